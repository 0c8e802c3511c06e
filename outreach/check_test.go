package outreach_test

import (
	"errors"
	"testing"

	"github.com/privguard/privguard/outreach"
)

// proves MKT-03
// proves MKT-05
func TestCheckTemplate(t *testing.T) {
	mkt := func(sender, text string) outreach.Template {
		return outreach.Template{Kind: outreach.KindMarketing, Sender: sender, Text: text, ID: "t1"}
	}
	svc := func(sender, text string) outreach.Template {
		return outreach.Template{Kind: outreach.KindService, Sender: sender, Text: text, ID: "t2"}
	}
	for _, c := range []struct {
		name    string
		channel string
		t       outreach.Template
		markers []string
		rule    string // "" passes
	}{
		{"sms zh with 回T退订", "sms", mkt("示例商城", "【示例商城】会员日全场上新，详情见App。回T退订"), nil, ""},
		{"sms zh with 回TD退订", "sms", mkt("示例商城", "【示例商城】新品到店啦！回TD退订"), nil, ""},
		{"sms zh with 退订回N", "sms", mkt("示例商城", "【示例商城】新品到店啦！退订回N"), nil, ""},
		{"sms en with Reply STOP", "sms", mkt("Example Shop", "【Example Shop】New arrivals this week. Reply STOP to opt out"), nil, ""},
		{"sms without refusal", "sms", mkt("示例商城", "【示例商城】会员日全场上新，详情见App。"), nil, outreach.RuleRefusalMissing},
		{"sms without signature", "sms", mkt("示例商城", "会员日全场上新。回T退订"), nil, outreach.RuleSenderNotInText},
		{"sms with another signature", "sms", mkt("示例商城", "【别家商城】会员日全场上新。回T退订"), nil, outreach.RuleSenderNotInText},
		{"sms signature in plain brackets", "sms", mkt("示例商城", "[示例商城]会员日全场上新。回T退订"), nil, outreach.RuleSenderNotInText},
		{"no sender", "email", mkt(" ", "New arrivals {{unsubscribe_url}}"), nil, outreach.RuleSenderMissing},
		{"email with placeholder", "email", mkt("Example Shop", "New arrivals. Unsubscribe: {{unsubscribe_url}}"), nil, ""},
		{"email with unsubscribe URL", "email", mkt("Example Shop", "New arrivals. https://shop.example.com/unsubscribe?u=1"), nil, ""},
		{"email zh with 退订 link", "email", mkt("示例商城", "新品上市。点击退订：https://shop.example.com/退订"), nil, ""},
		{"email without link", "email", mkt("Example Shop", "New arrivals. Write to us to unsubscribe."), nil, outreach.RuleRefusalMissing},
		{"push with placeholder", "push", mkt("Example Shop", "Weekend picks {{ unsubscribe_url }}"), nil, ""},
		{"push without link", "push", mkt("Example Shop", "Weekend picks for you"), nil, outreach.RuleRefusalMissing},
		{"wechat with 退订", "wechat", mkt("示例商城", "本周新品推荐。回复“退订”不再接收"), nil, ""},
		{"wechat without entry", "wechat", mkt("示例商城", "本周新品推荐"), nil, outreach.RuleRefusalMissing},
		{"service zh plain", "sms", svc("示例商城", "【示例商城】您的订单已发货，快递单号SF123。"), nil, ""},
		{"service en plain", "email", svc("Example Shop", "Your order has shipped."), nil, ""},
		{"service needs no refusal", "push", svc("Example Shop", "Your parcel arrives today"), nil, ""},
		{"service with a price in ¥", "sms", svc("示例商城", "【示例商城】您的订单已发货。新品仅需¥99"), nil, outreach.RuleServiceIsPromotional},
		{"service with a price in 元", "sms", svc("示例商城", "【示例商城】您的订单已发货。会员价99元"), nil, outreach.RuleServiceIsPromotional},
		{"service with a price in $", "email", svc("Example Shop", "Your order has shipped. Add socks for $5"), nil, outreach.RuleServiceIsPromotional},
		{"service with a coupon", "sms", svc("示例商城", "【示例商城】您的订单已发货，送您一张优惠券"), nil, outreach.RuleServiceIsPromotional},
		{"service with a coupon en", "email", svc("Example Shop", "Your order has shipped. Here is a coupon for next time"), nil, outreach.RuleServiceIsPromotional},
		{"service with 限时", "push", svc("示例商城", "您的包裹已签收，限时活动进行中"), nil, outreach.RuleServiceIsPromotional},
		{"service with limited time", "push", svc("Example Shop", "Delivered. Limited time: new arrivals"), nil, outreach.RuleServiceIsPromotional},
		{"service with 8折", "wechat", svc("示例商城", "您的包裹已签收，全场8折"), nil, outreach.RuleServiceIsPromotional},
		{"service with % off", "email", svc("Example Shop", "Delivered. 20% off your next order"), nil, outreach.RuleServiceIsPromotional},
		{"service with an offer link", "email", svc("Example Shop", "Delivered. See https://shop.example.com/offers/spring"), nil, outreach.RuleServiceIsPromotional},
		{"service with a configured marker", "email", svc("Example Shop", "Delivered. Join our VIP Club"), []string{"vip club"}, outreach.RuleServiceIsPromotional},
		{"service without the configured marker", "email", svc("Example Shop", "Delivered."), []string{"vip club"}, ""},
		{"marketing may be promotional", "sms", mkt("示例商城", "【示例商城】全场8折，限时三天！回T退订"), nil, ""},
		{"unknown channel", "fax", mkt("Example Shop", "x"), nil, outreach.RuleChannelUnknown},
		{"unknown kind", "sms", outreach.Template{Kind: "news", Sender: "a", Text: "【a】x"}, nil, outreach.RuleKindUnknown},
		{"no text", "sms", mkt("a", " "), nil, outreach.RuleTextMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := outreach.CheckTemplate(c.channel, c.t, c.markers)
			var re *outreach.RuleError
			switch {
			case c.rule == "" && err != nil:
				t.Fatalf("CheckTemplate = %v, want nil", err)
			case c.rule != "" && !errors.As(err, &re):
				t.Fatalf("CheckTemplate = %v, want *RuleError %s", err, c.rule)
			case c.rule != "" && re.Rule != c.rule:
				t.Fatalf("rule %s (%s), want %s", re.Rule, re.Detail, c.rule)
			}
		})
	}
}
