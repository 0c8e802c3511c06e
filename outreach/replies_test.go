package outreach_test

import (
	"testing"

	"github.com/privguard/privguard/outreach"
)

func TestParseReply(t *testing.T) {
	extra := []string{"取消订阅", "0000", "opt out", "！！"}
	tests := []struct {
		name    string
		text    string
		verdict outreach.Verdict
		matched string
	}{
		// A keyword alone, in any of the shapes phones and people send it.
		{name: "td", text: "TD", verdict: outreach.Stop, matched: "TD"},
		{name: "td_lower", text: "td", verdict: outreach.Stop, matched: "TD"},
		{name: "td_mixed_case_spaces", text: "  Td \n", verdict: outreach.Stop, matched: "TD"},
		{name: "td_full_width", text: "ＴＤ", verdict: outreach.Stop, matched: "TD"},
		{name: "td_full_width_lower", text: "ｔｄ", verdict: outreach.Stop, matched: "TD"},
		{name: "td_brackets", text: "【TD】", verdict: outreach.Stop, matched: "TD"},
		{name: "td_chinese_full_stop", text: "TD。", verdict: outreach.Stop, matched: "TD"},
		{name: "td_quotes", text: "“TD”", verdict: outreach.Stop, matched: "TD"},
		{name: "t_bang", text: "T!", verdict: outreach.Stop, matched: "T"},
		{name: "t_ideographic_space", text: "\u3000t\u3000", verdict: outreach.Stop, matched: "T"},
		{name: "t_circled", text: "Ⓣ", verdict: outreach.Stop, matched: "T"},
		{name: "n", text: "n", verdict: outreach.Stop, matched: "N"},
		{name: "stop_emoji", text: "STOP 🙅‍♀️", verdict: outreach.Stop, matched: "STOP"},
		{name: "stop_emoji_skin_tone", text: "👋🏽stop", verdict: outreach.Stop, matched: "STOP"},
		{name: "unsubscribe", text: "Unsubscribe", verdict: outreach.Stop, matched: "UNSUBSCRIBE"},
		{name: "tuiding", text: "退订", verdict: outreach.Stop, matched: "退订"},
		{name: "tuiding_traditional", text: "退訂", verdict: outreach.Stop, matched: "退訂"},
		{name: "tuiding_bang", text: "退订！！！", verdict: outreach.Stop, matched: "退订"},
		// A keyword with only courtesy words around it.
		{name: "td_please", text: "TD please", verdict: outreach.Stop, matched: "TD"},
		{name: "stop_please", text: "Stop, please.", verdict: outreach.Stop, matched: "STOP"},
		{name: "please_unsubscribe_me", text: "please unsubscribe me", verdict: outreach.Stop, matched: "UNSUBSCRIBE"},
		{name: "td_xiexie", text: "TD谢谢", verdict: outreach.Stop, matched: "TD"},
		{name: "qing_td", text: "请 TD", verdict: outreach.Stop, matched: "TD"},
		{name: "stop_stop", text: "STOP STOP", verdict: outreach.Stop, matched: "STOP"},
		// 退订 anywhere is an opt-out, unless negated.
		{name: "tuiding_in_sentence", text: "不要再发了 退订", verdict: outreach.Stop, matched: "退订"},
		{name: "tuiding_in_sentence_no_space", text: "别再给我发短信了退订", verdict: outreach.Stop, matched: "退订"},
		{name: "hui_t_tuiding_echo", text: "回T退订", verdict: outreach.Stop, matched: "退订"},
		{name: "how_to_tuiding", text: "怎么退订？", verdict: outreach.Stop, matched: "退订"},
		{name: "tuiding_with_english", text: "退订 thanks", verdict: outreach.Stop, matched: "退订"},
		{name: "negated_buyao", text: "不要退订", verdict: outreach.Ambiguous, matched: "退订"},
		{name: "negated_bie", text: "我别退订了吧", verdict: outreach.Ambiguous, matched: "退订"},
		{name: "negated_buxiang", text: "我不想退订，只是问问", verdict: outreach.Ambiguous, matched: "退订"},
		{name: "negated_then_plain", text: "不退订？算了还是退订", verdict: outreach.Stop, matched: "退订"},
		// A keyword of two or more letters among other words is ambiguous.
		{name: "td_call_me", text: "TD please call me first", verdict: outreach.Ambiguous, matched: "TD"},
		{name: "dont_stop", text: "don't stop", verdict: outreach.Ambiguous, matched: "STOP"},
		{name: "dont_stop_curly", text: "Don’t STOP!", verdict: outreach.Ambiguous, matched: "STOP"},
		{name: "stop_sending_me_texts", text: "stop sending me these texts", verdict: outreach.Ambiguous, matched: "STOP"},
		{name: "how_unsubscribe", text: "how do I unsubscribe?", verdict: outreach.Ambiguous, matched: "UNSUBSCRIBE"},
		// One letter counts only alone.
		{name: "t_shirt", text: "T shirt size M", verdict: outreach.Other},
		{name: "n_in_sentence", text: "N is my initial", verdict: outreach.Other},
		// No keyword.
		{name: "empty", text: "", verdict: outreach.Other},
		{name: "only_punctuation", text: "？！。", verdict: outreach.Other},
		{name: "only_emoji", text: "👍", verdict: outreach.Other},
		{name: "thanks", text: "谢谢", verdict: outreach.Other},
		{name: "yes", text: "Y", verdict: outreach.Other},
		{name: "stopped", text: "stopped", verdict: outreach.Other},
		{name: "tds", text: "TDS", verdict: outreach.Other},
		{name: "question", text: "优惠券怎么用？", verdict: outreach.Other},
		{name: "ding", text: "订阅", verdict: outreach.Other},
		{name: "quxiao_not_builtin", text: "取消", verdict: outreach.Other},
		// Configured words.
		{name: "extra_han", text: "取消订阅", verdict: outreach.Stop, matched: "取消订阅"},
		{name: "extra_han_in_sentence", text: "请帮我取消订阅吧", verdict: outreach.Stop, matched: "取消订阅"},
		{name: "extra_digits", text: "0000", verdict: outreach.Stop, matched: "0000"},
		{name: "extra_digits_full_width", text: "００００", verdict: outreach.Stop, matched: "0000"},
		{name: "extra_phrase", text: "Opt-Out", verdict: outreach.Stop, matched: "OPT OUT"},
		{name: "extra_phrase_among_words", text: "I want to opt out now", verdict: outreach.Ambiguous, matched: "OPT OUT"},
		{name: "extra_only_punctuation_skipped", text: "！！", verdict: outreach.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, m := outreach.ParseReply(tt.text, extra)
			if v != tt.verdict || m != tt.matched {
				t.Errorf("ParseReply(%q) = %v, %q; want %v, %q", tt.text, v, m, tt.verdict, tt.matched)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"TD", "不要退订", "【ＴＤ】", "\xff\xfe", "STOP 🙅‍♀️"} {
		f.Add(s)
	}
	k := outreach.NewKeywords([]string{"取消订阅"})
	f.Fuzz(func(t *testing.T, s string) {
		v, m := k.Parse(s)
		if (v == outreach.Other) != (m == "") {
			t.Errorf("Parse(%q) = %v, %q: a keyword exactly when not Other", s, v, m)
		}
	})
}
