package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// propagationResult is one run of the withdrawal propagation measurement.
type propagationResult struct {
	// fromSend: from just before the withdrawal is sent to replica A until replica B first
	// answers "withdrawn". fromAck: from A's 201 to the same moment. ack: A's answer time.
	fromSend, fromAck, ack []time.Duration
	polls                  int // GETs sent to B in all
	cpu                    cpuUse
}

// propagation starts three replicas on a new schema, grants subjects SMS marketing
// through them (rotating), then for each subject withdraws through replica A = i%3 and
// polls replica B = (i+1)%3 in a tight loop (one GET after another, no sleep) until B
// answers the SMS purpose "withdrawn".
func (e *env) propagation(ctx context.Context, subjects int, pprofSecs int) (propagationResult, error) {
	schema := e.newSchema("prop")
	defer e.dropSchema(schema)
	var specs []replicaSpec
	for i := range 3 {
		specs = append(specs, replicaSpec{name: fmt.Sprintf("r%d", i), schema: schema, pprofPort: e.pprofPort()})
	}
	rs, err := e.startReady(ctx, specs...)
	if err != nil {
		return propagationResult{}, err
	}
	defer stopAll(rs)
	if err := e.registerNotice(rs[0]); err != nil {
		return propagationResult{}, err
	}
	prefix := "prop-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	subject := func(i int) string { return prefix + strconv.Itoa(i) }

	// Grants, 16 at a time, through replica i%3.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			cs := []*conn{newConn(rs[0].url), newConn(rs[1].url), newConn(rs[2].url)}
			defer func() {
				for _, c := range cs {
					c.close()
				}
			}()
			var req, body []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= subjects || ctx.Err() != nil {
					return
				}
				s := subject(i)
				body = appendGrant(body[:0], []byte(s), i)
				req = postRequest(req[:0], "/v1/consents", e.token, nil, body)
				if status, answer, err := cs[i%3].do(req); err != nil || status != 201 {
					select {
					case errs <- fmt.Errorf("grant through %s: %d %s %v", rs[i%3].name, status, answer, err):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return propagationResult{}, err
	default:
	}

	cs := []*conn{newConn(rs[0].url), newConn(rs[1].url), newConn(rs[2].url)}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	res := propagationResult{}
	stopProf := e.profile(rs, "propagation", pprofSecs)
	defer stopProf()
	cpu0 := sampleCPU(rs)
	for i := range subjects {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		s := subject(i)
		a, b := i%3, (i+1)%3
		get := getRequest("/v1/subjects/"+s+"/consents", e.token)
		// The grant must have reached B first, or the wait would include it.
		for deadline := time.Now().Add(5 * time.Second); ; {
			status, body, err := cs[b].do(get)
			if err == nil && status == 200 {
				if st, _ := smsState(body); st == "given" {
					break
				}
			}
			if time.Now().After(deadline) {
				return res, fmt.Errorf("subject %d: the grant is not given on %s after 5s (%d %v)", i, rs[b].name, status, err)
			}
			time.Sleep(time.Millisecond)
		}
		withdraw := postRequest(nil, "/v1/consents", e.token, nil, withdrawBody(s))
		start := time.Now()
		status, body, err := cs[a].do(withdraw)
		acked := time.Now()
		if err != nil || status != 201 {
			return res, fmt.Errorf("withdraw through %s: %d %s %v", rs[a].name, status, body, err)
		}
		for {
			status, body, err := cs[b].do(get)
			res.polls++
			if err == nil && status == 200 {
				if st, _ := smsState(body); st == "withdrawn" {
					break
				}
			}
			if time.Since(start) > 10*time.Second {
				return res, fmt.Errorf("subject %d withdrawn through %s is not withdrawn on %s after 10s (%d %v)", i, rs[a].name, rs[b].name, status, err)
			}
		}
		seen := time.Now()
		res.fromSend = append(res.fromSend, seen.Sub(start))
		res.fromAck = append(res.fromAck, seen.Sub(acked))
		res.ack = append(res.ack, acked.Sub(start))
	}
	res.cpu = cpu0.to(sampleCPU(rs))
	slices.Sort(res.fromSend)
	slices.Sort(res.fromAck)
	slices.Sort(res.ack)
	return res, nil
}

func (r propagationResult) String() string {
	return fmt.Sprintf("withdrawal to another replica, from send: p50 %s p99 %s max %s; from A's 201: p50 %s p99 %s max %s; A's 201 itself p50 %s p99 %s; %.1f polls per withdrawal; %s",
		ms(percentile(r.fromSend, .5)), ms(percentile(r.fromSend, .99)), ms(r.fromSend[len(r.fromSend)-1]),
		ms(percentile(r.fromAck, .5)), ms(percentile(r.fromAck, .99)), ms(r.fromAck[len(r.fromAck)-1]),
		ms(percentile(r.ack, .5)), ms(percentile(r.ack, .99)), float64(r.polls)/float64(len(r.fromSend)), r.cpu)
}
