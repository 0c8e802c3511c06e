package outreach

import (
	"fmt"
	"regexp"
	"strings"
)

// Template kinds.
const (
	// KindMarketing is a promotional message: it needs the recipient's channel consent and
	// carries a refusal method.
	KindMarketing = "marketing"
	// KindService is a transactional message (an order shipped, a password reset): it rests
	// on the contract and must carry no promotional content (MKT-05).
	KindService = "service"
)

// Channels the gate knows, each the last label of its marketing purpose
// (marketing.communications.<channel>).
const (
	ChannelSMS    = "sms"
	ChannelEmail  = "email"
	ChannelPush   = "push"
	ChannelWeChat = "wechat"
)

// UnsubscribePlaceholder is the placeholder an email or push template carries where the
// sender puts each recipient's unsubscribe URL (Allowed.Unsubscribe.URL).
const UnsubscribePlaceholder = "{{unsubscribe_url}}"

// Template is a message as a campaign sends it to every recipient.
type Template struct {
	// Kind is KindMarketing or KindService.
	Kind string `json:"kind"`
	// Sender is the true sender's name as the message shows it (for SMS, the signature in
	// 【】 the text must carry).
	Sender string `json:"sender"`
	// Text is the message body, placeholders included.
	Text string `json:"text"`
	// ID names the template; it is sealed into each unsubscribe token as evidence.
	ID string `json:"id"`
}

// The rules a template can fail, as RuleError.Rule names them.
const (
	RuleChannelUnknown       = "channel_unknown"
	RuleKindUnknown          = "kind_unknown"
	RuleTextMissing          = "text_missing"
	RuleSenderMissing        = "sender_missing"
	RuleSenderNotInText      = "sender_not_in_text"
	RuleRefusalMissing       = "refusal_missing"
	RuleServiceIsPromotional = "service_is_promotional"
	RuleIDTooLong            = "id_too_long"
	// RuleSoftOptInChannel is a soft opt-in request for anything but a marketing email
	// (MKT-02).
	RuleSoftOptInChannel = "soft_opt_in_channel"
)

// RuleError is a template failing one of the message checks.
type RuleError struct {
	// Rule is the rule that failed (RuleSenderMissing, ...).
	Rule string
	// Detail says what the rule wants, in words fit for the template's author.
	Detail string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("outreach: template fails %s: %s", e.Rule, e.Detail)
}

// channelKnown reports whether c is a channel the gate knows.
func channelKnown(c string) bool {
	switch c {
	case ChannelSMS, ChannelEmail, ChannelPush, ChannelWeChat:
		return true
	}
	return false
}

// CheckTemplate checks t as a message on channel: it names its true sender (for SMS the
// text carries it as the 【signature】 PRC SMS rules require, on every SMS), a marketing
// template carries a free refusal method for its channel (MKT-03: SMS a reply keyword such
// as 回T退订 or Reply STOP, email and push an unsubscribe link or UnsubscribePlaceholder,
// WeChat an opt-out entry), and a service template carries no promotional content — the
// built-in markers (prices, coupons, 限时, discounts, links to offers) or one of markers,
// matched without regard to case (MKT-05). It returns a *RuleError naming the first rule
// that fails, or nil.
func CheckTemplate(channel string, t Template, markers []string) error {
	if !channelKnown(channel) {
		return &RuleError{Rule: RuleChannelUnknown, Detail: "channel must be sms, email, push or wechat"}
	}
	if t.Kind != KindMarketing && t.Kind != KindService {
		return &RuleError{Rule: RuleKindUnknown, Detail: "kind must be marketing or service"}
	}
	if strings.TrimSpace(t.Text) == "" {
		return &RuleError{Rule: RuleTextMissing, Detail: "the template has no text"}
	}
	sender := strings.TrimSpace(t.Sender)
	if sender == "" {
		return &RuleError{Rule: RuleSenderMissing, Detail: "a message names its true sender"}
	}
	if channel == ChannelSMS && !strings.Contains(t.Text, "【"+sender+"】") {
		return &RuleError{Rule: RuleSenderNotInText, Detail: "an SMS carries its sender as a signature in 【】: 【" + sender + "】"}
	}
	lower := strings.ToLower(t.Text)
	if t.Kind == KindService {
		if m := promotional(lower, markers); m != "" {
			return &RuleError{Rule: RuleServiceIsPromotional, Detail: "a service message carrying promotional content (" + m + ") is marketing: declare it so"}
		}
		return nil
	}
	if !hasRefusal(channel, lower) {
		return &RuleError{Rule: RuleRefusalMissing, Detail: refusalWanted[channel]}
	}
	return nil
}

// refusalWanted says, per channel, what refusal method a marketing template must carry.
var refusalWanted = map[string]string{
	ChannelSMS:    "a marketing SMS carries a reply keyword to refuse (回T退订, 回TD退订, Reply STOP)",
	ChannelEmail:  "a marketing email carries an unsubscribe link (" + UnsubscribePlaceholder + " or an unsubscribe URL)",
	ChannelPush:   "a marketing push carries an unsubscribe link (" + UnsubscribePlaceholder + " or an unsubscribe URL)",
	ChannelWeChat: "a marketing WeChat message carries an opt-out entry (退订, 取消订阅, unsubscribe)",
}

// smsRefusal matches a reply keyword offered in an SMS: 回T退订, 回复TD退订, 退订回T,
// 拒收请回复R, Reply STOP, Text STOP to opt out.
var smsRefusal = regexp.MustCompile(`(回复?\s*(t|td|n|r|退订)\s*(退订|拒收)?)|((退订|拒收)(请)?回复?\s*(t|td|n|r))|((reply|text|send)\s+"?(stop|unsubscribe|td|t)\b)`)

// linkRefusal matches an unsubscribe placeholder or URL in an email or push.
var linkRefusal = regexp.MustCompile(`\{\{\s*[a-z_.]*unsubscribe[a-z_.]*\s*\}\}|https?://\S*(unsubscribe|opt-?out|退订)`)

// hasRefusal reports whether lower (the lower-cased text) carries channel's refusal method.
func hasRefusal(channel, lower string) bool {
	switch channel {
	case ChannelSMS:
		return smsRefusal.MatchString(lower)
	case ChannelEmail, ChannelPush:
		return linkRefusal.MatchString(lower)
	case ChannelWeChat:
		for _, w := range []string{"退订", "取消订阅", "拒收", "unsubscribe", "opt out", "opt-out"} {
			if strings.Contains(lower, w) {
				return true
			}
		}
		return linkRefusal.MatchString(lower)
	}
	return false
}

// promoMarkers are the built-in signs of promotional content, on the lower-cased text: a
// price (¥/￥/$/€/£ amounts, 元), a coupon, a time limit, a discount (8折, % off) or a
// link to an offer.
var promoMarkers = []struct {
	name string
	re   *regexp.Regexp
}{
	{"price", regexp.MustCompile(`[¥￥$€£]\s*\d|\d\s*(元|块)`)},
	{"coupon", regexp.MustCompile(`优惠券|优惠码|红包|coupon|voucher|promo code`)},
	{"time limit", regexp.MustCompile(`限时|秒杀|limited[- ]time|today only|ends (today|tonight|soon)`)},
	{"discount", regexp.MustCompile(`[0-9一二三四五六七八九半]\s*折|满\d+减|特价|促销|折扣|\d+\s*%\s*off|percent off|discount|\bsale\b`)},
	{"offer link", regexp.MustCompile(`https?://\S*(offer|promo|sale|deal|coupon|活动|优惠)`)},
}

// promotional returns the name of the first promotional marker lower carries, or "".
func promotional(lower string, markers []string) string {
	for _, m := range promoMarkers {
		if m.re.MatchString(lower) {
			return m.name
		}
	}
	for _, m := range markers {
		if m = strings.ToLower(strings.TrimSpace(m)); m != "" && strings.Contains(lower, m) {
			return "marker " + m
		}
	}
	return ""
}
