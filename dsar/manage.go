package dsar

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// Extend records a GDPR Art. 12(3) extension of one or two months, with its reasons and the
// time the subject was told of it (zero: now). The extension must be decided and told within
// the first month; PIPL has none. It waits for a running Step round to end.
func (e *Engine) Extend(ctx context.Context, id string, months int, reason string, notifiedAt time.Time) (Request, error) {
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		if notifiedAt.IsZero() {
			notifiedAt = now
		}
		ext := &Extension{Months: months, Reason: reason, RecordedAt: now, NotifiedAt: notifiedAt.UTC()}
		dl, err := e.cfg.Deadlines.Due(r.Regime, r.ReceivedAt, r.Pauses, ext, now)
		if err != nil {
			return err
		}
		r.Extension, r.Deadline = ext, dl
		r.event(now, "extended", fmt.Sprintf("%d month(s)", months))
		return nil
	})
}

// Cancel closes an open request (withdrawn by the subject, say) with a reason.
func (e *Engine) Cancel(ctx context.Context, id, reason string) (Request, error) {
	if reason == "" {
		return Request{}, fmt.Errorf("dsar: a reason is required: %w", privguard.ErrInvalid)
	}
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		r.State, r.Reason, r.Challenge = StateCancelled, reason, nil
		r.event(now, string(StateCancelled), "")
		return nil
	})
}

// Rejection reason codes (DSR-04: a refusal always carries one, and the recourse).
var RejectReasons = []string{
	"manifestly_unfounded",     // GDPR Art. 12(5)
	"excessive",                // GDPR Art. 12(5): repetitive
	"identity_not_established", // GDPR Art. 12(6), 11(2)
	"legal_exemption",          // GDPR Art. 15(4), 17(3), 23; PIPL Art. 18, 45
	"retention_obligation",     // PIPL Art. 47(2): storage and security only
	"not_the_subject",          // the requester's data is not held
	"data_accurate",            // a correction: the data held is accurate (GDPR Art. 16, PIPL Art. 46)
}

// DefaultRecourse is the recourse a rejection tells the subject, per regime. The controller
// may name its own authority and court (Config.Recourse).
var DefaultRecourse = map[privguard.Regime]string{
	privguard.RegimeGDPR: "You may lodge a complaint with a data protection supervisory authority, in particular in the Member State of your habitual residence, place of work or of the alleged infringement, and seek a judicial remedy before a court (GDPR Arts. 12(4), 77, 79).",
	privguard.RegimePIPL: "您可以向履行个人信息保护职责的部门投诉、举报；个人信息处理者拒绝您行使权利的请求的，您可以依法向人民法院提起诉讼（《个人信息保护法》第五十条、第六十五条）。" +
		" You may complain to or report to the authorities responsible for personal information protection; if a handler refuses your request, you may sue before a people's court (PIPL Arts. 50, 65).",
}

// The statutory rights texts, per regime and language.
const (
	rightsGDPREn = "You may ask for access to and a copy of your data, its correction, erasure and restriction, " +
		"receive it in a portable form or have it sent to another controller, object to its processing (to direct marketing " +
		"at any time), and withdraw consent at any time, through the channel you used for this request (GDPR Arts. 7(3), 15-21)."
	rightsGDPRZh = "您有权查阅并获取您的数据副本，要求更正、删除和限制处理，以可携带的形式获得数据或要求将其传输给其他控制者，" +
		"反对处理（对直接营销可随时反对），并可随时撤回同意；请通过提出本次请求的渠道行使（《通用数据保护条例》第7条第3款、第15条至第21条）。"
	rightsPIPLZh = "您有权查阅、复制、转移、更正、补充、删除您的个人信息，限制或者拒绝处理，撤回同意，并要求我们解释个人信息处理规则；" +
		"请通过提出本次请求的渠道行使（《个人信息保护法》第四十四条至第四十八条）。"
	rightsPIPLEn = "You may access, copy, transfer, correct, " +
		"complete and delete your personal information, restrict or refuse its processing, withdraw consent and ask us to explain " +
		"our processing rules, through the channel you used for this request (PIPL Arts. 44-48)."
)

// StatutoryRights tells an access answer's reader which rights the law gives them and how
// to use them, per regime and language ("zh", "en"). Every access answer carries it; the
// controller's configured text (Disclosure.Rights) is added after it, never instead.
var StatutoryRights = map[privguard.Regime]map[string]string{
	privguard.RegimeGDPR: {"en": rightsGDPREn, "zh": rightsGDPRZh},
	privguard.RegimePIPL: {"zh": rightsPIPLZh, "en": rightsPIPLEn},
}

// DefaultRights is the statutory rights text per regime as disclosure.json's rights
// begins: PIPL's in Chinese and English, GDPR's in English.
var DefaultRights = map[privguard.Regime]string{
	privguard.RegimeGDPR: rightsGDPREn,
	privguard.RegimePIPL: rightsPIPLZh + " " + rightsPIPLEn,
}

// rightsText is the rights an answer under regime states: the statutory text, then the
// controller's added text, if any.
func rightsText(regime privguard.Regime, added string) string {
	if added == "" {
		return DefaultRights[regime]
	}
	return DefaultRights[regime] + " " + added
}

// Reject refuses an open request with a reason code from RejectReasons; the request then
// carries the recourse text for its regime (DSR-04).
func (e *Engine) Reject(ctx context.Context, id, reason string) (Request, error) {
	if !slices.Contains(RejectReasons, reason) {
		return Request{}, fmt.Errorf("dsar: reject reason %q: want one of %v: %w", reason, RejectReasons, privguard.ErrInvalid)
	}
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		r.State, r.Reason, r.Challenge = StateRejected, reason, nil
		r.Recourse = e.recourse(r.Regime)
		r.event(now, string(StateRejected), reason)
		return nil
	})
}

// change applies fn to an open request, at once: a Step round working on the request
// meanwhile merges its results into the changed request when it writes (merge). On a
// shared store, where another replica may write the request between the read and the
// write, fn is applied again to the request as it then is, a few times at most.
func (e *Engine) change(ctx context.Context, id string, fn func(r *Request, now time.Time) error) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 0; ; attempt++ {
		r, err := e.get(ctx, id)
		if err != nil {
			return Request{}, err
		}
		if r.State.Final() {
			return Request{}, fmt.Errorf("dsar: request is %s: %w", r.State, privguard.ErrConflict)
		}
		if err := fn(&r, e.cfg.Now().UTC()); err != nil {
			return Request{}, err
		}
		if r.State.Final() {
			forgetItems(&r)
		}
		if err := e.put(ctx, &r); !errors.Is(err, ErrVersion) || attempt == 4 {
			return r, err
		}
	}
}

// Retry makes a request's failed tasks due now instead of at their backoff time (a store
// came back; the operator does not want to wait). It reports how many tasks it made due.
func (e *Engine) Retry(ctx context.Context, id string) (Request, int, error) {
	n := 0
	r, err := e.change(ctx, id, func(r *Request, now time.Time) error {
		n = 0 // applied again if another replica wrote the request meanwhile
		for i := range r.Tasks {
			if t := &r.Tasks[i]; t.State == TaskFailed {
				t.NextAttempt, n = now, n+1
			}
		}
		r.event(now, "retry requested", fmt.Sprintf("%d task(s)", n))
		return nil
	})
	return r, n, err
}

// recourse is the complaint authority and court remedy the subject is told of under regime.
func (e *Engine) recourse(regime privguard.Regime) string {
	return cmp.Or(e.cfg.Recourse[regime], DefaultRecourse[regime])
}

// Approve approves a verified correction's patch; its tasks then run on every store that
// can correct. approver names the operator (kept in the request's audit trail).
func (e *Engine) Approve(ctx context.Context, id, approver, note string) (Request, error) {
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		if r.State != StateAwaitingApproval {
			return fmt.Errorf("dsar: request is %s, not awaiting approval: %w", r.State, privguard.ErrConflict)
		}
		r.Approval = &Approval{By: approver, Note: note, At: now}
		r.event(now, "approved", approver)
		e.start(r)
		return nil
	})
}
