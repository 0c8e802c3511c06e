package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/privguard/privguard/internal/consentload"
)

// smsPurpose is the purpose every generated grant and withdrawal is about.
const smsPurpose = "marketing.communications.sms"

// appendGrant appends the body consentload.GrantBody(subject, i) makes (the README's
// complete grant: notice, channel, method, user agent and IP), without fmt's allocations.
func appendGrant(dst []byte, subject []byte, i int) []byte {
	dst = append(dst, `{"subject":"`...)
	dst = append(dst, subject...)
	dst = append(dst, `","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",`+
		`"notice":{"id":"marketing","version":1,"language":"zh-CN"},"channel":"app","method":"explicit",`+
		`"evidence":{"user_agent":"ExampleApp/7.2 (iOS 18)","ip":"100.`...)
	dst = strconv.AppendInt(dst, int64(byte(i>>16)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(byte(i>>8)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(byte(i)), 10)
	return append(dst, `","ui_screen":"onboarding/consent"}}`...)
}

// withdrawBody is a withdrawal of the SMS purpose (as in cmd/privguard/replicas_test.go).
func withdrawBody(subject string) []byte {
	return fmt.Appendf(nil, `{"subject":%q,"purpose":"marketing.communications.sms","action":"withdraw","channel":"app","method":"explicit"}`, subject)
}

// registerNotice registers consentload's notice (the one its grants and imports cite)
// through r.
func (e *env) registerNotice(r *replica) error {
	c := newConn(r.url)
	defer c.close()
	status, body, err := c.do(postRequest(nil, "/v1/notices", e.token, nil, []byte(consentload.NoticeBody)))
	if err != nil {
		return err
	}
	if status != 201 && status != 200 {
		return fmt.Errorf("register notice through %s: %d %s", r.name, status, body)
	}
	return nil
}

// smsState reads the state of the SMS purpose in a GET /v1/subjects/{id}/consents answer
// ("" if the subject has none).
func smsState(body []byte) (string, error) {
	var v struct {
		Purposes []struct {
			Purpose string `json:"purpose"`
			State   string `json:"state"`
		} `json:"purposes"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	for _, p := range v.Purposes {
		if p.Purpose == smsPurpose {
			return p.State, nil
		}
	}
	return "", nil
}

// readyDetails is what /readyz says about the ledger (in its "checks").
type readyDetails struct {
	Records  uint64 `json:"consent_records"`
	Followed uint64 `json:"consent_followed_records"`
}

func (e *env) readyz(ctx context.Context, r *replica) (readyDetails, error) {
	c := newConn(r.url)
	defer c.close()
	status, body, err := c.do(getRequest("/readyz", e.token))
	if err != nil {
		return readyDetails{}, err
	}
	if status != 200 {
		return readyDetails{}, fmt.Errorf("readyz of %s: %d %s", r.name, status, body)
	}
	var v struct {
		Checks readyDetails `json:"checks"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return readyDetails{}, fmt.Errorf("readyz of %s: %w", r.name, err)
	}
	return v.Checks, nil
}

// metric reads one sample of the replica's /metrics (0 if absent).
func (e *env) metric(r *replica, name string) (float64, error) {
	c := newConn(r.url)
	defer c.close()
	status, body, err := c.do(getRequest("/metrics", e.token))
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("metrics of %s: %d", r.name, status)
	}
	for _, line := range splitLines(body) {
		if len(line) > len(name) && string(line[:len(name)]) == name && line[len(name)] == ' ' {
			return strconv.ParseFloat(string(line[len(name)+1:]), 64)
		}
	}
	return 0, nil
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}
