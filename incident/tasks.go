package incident

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// TaskLog is the journal log of the subjects' notification tasks: the only place the
// affected subjects' ids are kept.
const TaskLog = "incident-tasks"

// Notifier sends a subject the notice of an incident. identity.Notifier implements it
// (to the subject's verified email or phone, as one-time codes and download links go).
type Notifier interface {
	SendIncidentNotice(ctx context.Context, subject privguard.SubjectID, incidentID, text string) error
}

// ErrUnreachable, wrapped by a Notifier's error, means the subject has no address the
// notice can be sent to: Deliver leaves its task pending (it is sent once an address is
// linked; meanwhile the controller informs such subjects by other means, PIPL Art. 57)
// and goes on with the others.
var ErrUnreachable = errors.New("incident: the subject has no address to send the notice to")

// task is an entry of the task log.
type task struct {
	// Kind is "affected" (a subject of the incident: one task) or "sent" (tasks done).
	Kind     string   `json:"kind"`
	Incident string   `json:"incident"`
	Subject  string   `json:"subject,omitempty"`
	Tasks    []uint64 `json:"tasks,omitempty"`
}

// sentMarks bounds the tasks one "sent" entry marks.
const sentMarks = 100

func (r *Register) addTasks(ctx context.Context, incident string, ids []privguard.SubjectID) error {
	bodies := make([]any, len(ids))
	for i, s := range ids {
		bodies[i] = &task{Kind: "affected", Incident: incident, Subject: string(s)}
	}
	if _, err := r.tasks.Append(ctx, bodies...); err != nil {
		return fmt.Errorf("incident %s: store the subjects' tasks: %w", incident, err)
	}
	return nil
}

// TaskCounts counts an incident's notification tasks.
type TaskCounts struct {
	// Held: subjects named, their notice not released yet; Pending: released, not sent;
	// Sent: sent.
	Held    int `json:"held"`
	Pending int `json:"pending"`
	Sent    int `json:"sent"`
}

// pendingTask is an affected subject not sent to yet.
type pendingTask struct {
	seq      uint64
	incident string
	subject  string
}

// openTasks reads the task log: the tasks not sent, in order, and the counts per incident.
func (r *Register) openTasks(ctx context.Context, st *state) ([]pendingTask, map[string]*TaskCounts, error) {
	open := map[uint64]pendingTask{}
	var order []uint64
	counts := map[string]*TaskCounts{}
	err := journal.Scan(ctx, r.cfg.Store, TaskLog, 0, time.Time{}, func(e journal.Entry) error {
		var t task
		if err := e.Decode(&t); err != nil {
			return err
		}
		c := counts[t.Incident]
		if c == nil {
			c = &TaskCounts{}
			counts[t.Incident] = c
		}
		switch t.Kind {
		case "affected":
			open[e.Seq] = pendingTask{seq: e.Seq, incident: t.Incident, subject: t.Subject}
			order = append(order, e.Seq)
		case "sent":
			for _, s := range t.Tasks {
				if _, ok := open[s]; ok {
					delete(open, s)
					c.Sent++
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var pending []pendingTask
	for _, s := range order {
		t, ok := open[s]
		if !ok {
			continue
		}
		if in := st.byID[t.incident]; in != nil && in.notified("subjects") != nil {
			pending = append(pending, t)
			counts[t.incident].Pending++
		} else {
			counts[t.incident].Held++
		}
	}
	return pending, counts, nil
}

// Tasks returns the counts of incident id's notification tasks.
func (r *Register) Tasks(ctx context.Context, id string) (TaskCounts, error) {
	st, err := r.read(ctx)
	if err != nil {
		return TaskCounts{}, err
	}
	_, counts, err := r.openTasks(ctx, st)
	if err != nil || counts[id] == nil {
		return TaskCounts{}, err
	}
	return *counts[id], nil
}

// Deliver sends every released task not sent yet through the Notifier, and marks them
// sent. It returns how many it sent; on a failed send it marks those sent before it and
// returns the error (the rest wait for the next call). Without a Notifier it sends nothing.
func (r *Register) Deliver(ctx context.Context) (int, error) {
	sent, _, err := r.deliver(ctx)
	return sent, err
}

// logHeads are the heads of the register's two logs: while they stay where they were
// when nothing was left to send, nothing can be (a task or a release is an append), so
// deliver reads neither log again.
type logHeads struct{ incidents, tasks uint64 }

func (r *Register) heads(ctx context.Context) (logHeads, error) {
	i, err := r.cfg.Store.JournalHead(ctx, Log)
	if err != nil {
		return logHeads{}, err
	}
	t, err := r.cfg.Store.JournalHead(ctx, TaskLog)
	if err != nil {
		return logHeads{}, err
	}
	return logHeads{i.Seq, t.Seq}, nil
}

// deliver is Deliver; left is how many released tasks are still to send.
func (r *Register) deliver(ctx context.Context) (sent, left int, err error) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	h, err := r.heads(ctx)
	if err != nil {
		return 0, 0, err
	}
	if r.idle != nil && *r.idle == h {
		return 0, 0, nil
	}
	st, err := r.read(ctx)
	if err != nil {
		return 0, 0, err
	}
	pending, _, err := r.openTasks(ctx, st)
	if err != nil {
		return 0, 0, err
	}
	if r.cfg.Notifier == nil {
		return 0, len(pending), nil
	}
	var marks []pendingTask
	flush := func() error {
		if len(marks) == 0 {
			return nil
		}
		// A mark per incident, so that each entry names one.
		byIncident := map[string][]uint64{}
		var incidents []string
		for _, t := range marks {
			if byIncident[t.incident] == nil {
				incidents = append(incidents, t.incident)
			}
			byIncident[t.incident] = append(byIncident[t.incident], t.seq)
		}
		bodies := make([]any, 0, len(incidents))
		for _, id := range incidents {
			bodies = append(bodies, &task{Kind: "sent", Incident: id, Tasks: byIncident[id]})
		}
		marks = marks[:0]
		_, err := r.tasks.Append(ctx, bodies...)
		return err
	}
	unreachable := 0
	for _, t := range pending {
		n := st.byID[t.incident].notified("subjects")
		err := r.cfg.Notifier.SendIncidentNotice(ctx, privguard.SubjectID(t.subject), t.incident, n.Notice.Text())
		if errors.Is(err, ErrUnreachable) {
			unreachable++
			continue
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return sent, len(pending) - sent, fmt.Errorf("incident %s: mark sent: %w", t.incident, ferr)
			}
			return sent, len(pending) - sent, fmt.Errorf("incident %s: send a subject's notice: %w", t.incident, err)
		}
		sent++
		marks = append(marks, t)
		if len(marks) == sentMarks {
			if err := flush(); err != nil {
				return sent, len(pending) - sent, fmt.Errorf("incident %s: mark sent: %w", t.incident, err)
			}
		}
	}
	if err := flush(); err != nil {
		return sent, len(pending) - sent, fmt.Errorf("incident: mark sent: %w", err)
	}
	if unreachable > 0 {
		return sent, unreachable, nil // tried again next round: an address may be linked by then
	}
	// Everything released is sent: until either log moves there is nothing to do.
	if h, err := r.heads(ctx); err == nil {
		r.idle = &h
	}
	return sent, 0, nil
}

// Wake makes Run deliver and check the clocks now.
func (r *Register) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Summary is the register's state at Run's last round, for the metrics.
type Summary struct {
	// Open incidents; AssessmentDue of them; clocks Alerting and Overdue.
	Open, AssessmentDue, Alerting, Overdue int
	// NextDeadline is the seconds to the nearest deadline still waiting for its notice
	// (negative when past; +Inf for none).
	NextDeadline float64
	// Pending notification tasks (released, not sent).
	Pending int
}

// Summary returns the state at Run's last round.
func (r *Register) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.summary
}

// Run delivers the subjects' notices and checks the clocks every interval (and when
// woken), until ctx ends: a clock that starts alerting or goes overdue is logged as a
// warning, once per state.
func (r *Register) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		r.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.wake:
		}
	}
}

// Step is one round of Run.
func (r *Register) Step(ctx context.Context) {
	n, left, err := r.deliver(ctx)
	if err != nil {
		// The error names the incident, never the subject.
		r.cfg.Logger.Warn("privguard: incident notices to subjects wait", "sent", n, "left", left, "err", err)
	}
	s := Summary{NextDeadline: math.Inf(1), Pending: left}
	var warn []func()
	now := r.cfg.Now()
	seen := map[string]bool{}
	r.stepMu.Lock()
	defer r.stepMu.Unlock()
	err = r.List(ctx, Filter{}, func(v View) error {
		if v.Status == StatusOpen {
			s.Open++
			if v.AssessmentDue {
				s.AssessmentDue++
			}
		}
		for _, c := range v.Clocks {
			key := v.ID + " " + c.Name
			seen[key] = true
			switch c.State {
			case Alert:
				s.Alerting++
			case Overdue:
				s.Overdue++
			}
			if c.Open() && c.Due != nil {
				s.NextDeadline = math.Min(s.NextDeadline, c.Due.Sub(now).Seconds())
			}
			if (c.State == Alert || c.State == Overdue) && r.alerted[key] != c.State {
				r.alerted[key] = c.State
				c, id, due := c, v.ID, v.AssessmentDue
				warn = append(warn, func() {
					attrs := []any{"incident", id, "clock", c.Name, "state", string(c.State), "why", c.Why, "assessment_due", due}
					if c.Due != nil {
						attrs = append(attrs, "due", c.Due.Format(time.RFC3339), "seconds_left", int64(*c.Left))
					}
					r.cfg.Logger.Warn("privguard: incident notice deadline", attrs...)
				})
			}
		}
		return nil
	})
	for k := range r.alerted {
		if !seen[k] {
			delete(r.alerted, k)
		}
	}
	if err == nil {
		r.mu.Lock()
		r.summary = s
		r.mu.Unlock()
	}
	if err != nil {
		r.cfg.Logger.Error("privguard: the incident register could not be read", "err", err)
	}
	for _, f := range warn {
		f()
	}
}
