package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// conn is a minimal HTTP/1.1 client on one kept-alive connection: the request is written
// as prepared bytes, the answer's status and body are read into buffers that are reused.
// It allocates nothing per request in the steady state, so that on a machine of few cores
// the load generator takes as little CPU from the servers as it can (net/http's client
// costs about 10 µs and 30 allocations a request). It handles what privguard's server
// sends: Content-Length or chunked bodies, and Connection: close. It is not safe for
// concurrent use.
type conn struct {
	addr string // host:port
	c    net.Conn
	br   *bufio.Reader
	body []byte
	line []byte
}

func newConn(url string) *conn {
	return &conn{addr: strings.TrimPrefix(url, "http://")}
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends req (a complete HTTP/1.1 request) and returns the status and the body, which is
// valid until the next call. On an error the connection is closed and the next call dials
// again.
func (c *conn) do(req []byte) (int, []byte, error) {
	status, body, err := c.try(req)
	if err != nil {
		c.close()
	}
	return status, body, err
}

func (c *conn) try(req []byte) (int, []byte, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		nc.(*net.TCPConn).SetNoDelay(true)
		c.c = nc
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 64<<10)
		} else {
			c.br.Reset(nc)
		}
	}
	c.c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := c.readLine()
	if err != nil {
		return 0, nil, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		h, err := c.readLine()
		if err != nil {
			return 0, nil, err
		}
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "content-length"):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		case asciiEqualFold(k, "transfer-encoding"):
			chunked = asciiEqualFold(v, "chunked")
		case asciiEqualFold(k, "connection"):
			closing = asciiEqualFold(v, "close")
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			l, err := c.readLine()
			if err != nil {
				return 0, nil, err
			}
			if i := bytes.IndexByte(l, ';'); i >= 0 {
				l = l[:i]
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("bad chunk size %q", l)
			}
			if n == 0 {
				for { // trailers
					t, err := c.readLine()
					if err != nil {
						return 0, nil, err
					}
					if len(t) == 0 {
						break
					}
				}
				break
			}
			if err := c.readBody(int(n)); err != nil {
				return 0, nil, err
			}
			if _, err := c.readLine(); err != nil {
				return 0, nil, err
			}
		}
	case length >= 0:
		if err := c.readBody(length); err != nil {
			return 0, nil, err
		}
	default:
		b, err := io.ReadAll(c.br)
		if err != nil {
			return 0, nil, err
		}
		c.body = append(c.body, b...)
		closing = true
	}
	if closing {
		c.close()
	}
	return status, c.body, nil
}

func (c *conn) readBody(n int) error {
	start := len(c.body)
	c.body = append(c.body, make([]byte, n)...)[:start+n]
	_, err := io.ReadFull(c.br, c.body[start:])
	return err
}

// readLine returns a line without its CRLF, valid until the next read.
func (c *conn) readLine() ([]byte, error) {
	l, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.line = append(c.line[:0], l...)
		for errors.Is(err, bufio.ErrBufferFull) {
			l, err = c.br.ReadSlice('\n')
			c.line = append(c.line, l...)
		}
		l = c.line
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// getRequest is a GET of path with the bearer token.
func getRequest(path, token string) []byte {
	return fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: privguard\r\nAuthorization: Bearer %s\r\n\r\n", path, token)
}

// postRequest is a JSON POST of body to path with the bearer token and, if key is not
// empty, an Idempotency-Key. It appends to dst.
func postRequest(dst []byte, path, token string, key, body []byte) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: privguard\r\nAuthorization: Bearer "...)
	dst = append(dst, token...)
	dst = append(dst, "\r\nContent-Type: application/json\r\n"...)
	if len(key) > 0 {
		dst = append(dst, "Idempotency-Key: "...)
		dst = append(dst, key...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
