package outreach

import (
	"testing"
	"time"
)

func BenchmarkAppendToken(b *testing.B) {
	s, _ := newSealer(make([]byte, KeySize))
	bt := s.batch()
	buf := make([]byte, 0, 512)
	t := Token{Subject: "cust-0123456", Channel: ChannelSMS, Template: "spring-1", Issued: time.Unix(1e9, 0)}
	b.ReportAllocs()
	for b.Loop() {
		buf = bt.appendToken(buf[:0], t)
	}
}
