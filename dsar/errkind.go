package dsar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrorKind names what went wrong with a store, without the error's text (which can hold
// the subject's id or data: a driver quotes the failing value). A failed task records it
// ([Task.ErrorKind], and in [Task.LastError]) and the engine logs it.
type ErrorKind string

// Error kinds. Connectors classify their driver's errors (PostgreSQL SQLSTATE codes,
// MySQL error numbers, Redis error prefixes, HTTP statuses); [KindOf] classifies the
// standard library's (context, network, system call) for them.
const (
	KindConnectionRefused ErrorKind = "connection_refused" // nothing listens at the store's address, or it cannot be reached
	KindConnectionLost    ErrorKind = "connection_lost"    // the connection broke (reset, closed, server shut down)
	KindHostUnknown       ErrorKind = "host_unknown"       // the store's host name does not resolve
	KindTimeout           ErrorKind = "timeout"            // the task's deadline passed, or a statement or lock wait timed out
	KindAuthFailed        ErrorKind = "auth_failed"        // the store refused privguard's credentials
	KindPermissionDenied  ErrorKind = "permission_denied"  // authenticated, but not allowed on that table, column or command
	KindDatabaseMissing   ErrorKind = "database_missing"   // the database or schema does not exist
	KindTableMissing      ErrorKind = "table_missing"      // a table of the data map does not exist
	KindColumnMissing     ErrorKind = "column_missing"     // a column of the data map does not exist
	KindValueRejected     ErrorKind = "value_rejected"     // the store refused a written value (NOT NULL, type, length, constraint)
	KindReadOnly          ErrorKind = "read_only"          // the store takes no writes (a replica, read-only mode)
	KindBadAnswer         ErrorKind = "bad_answer"         // a webhook store answered with an error status or an unreadable body
	KindReportedFailure   ErrorKind = "reported_failure"   // a store reported by callback that it could not do it
	KindCancelled         ErrorKind = "cancelled"          // privguard was stopping
	KindOther             ErrorKind = "other"              // none of the above
)

// ErrorKinds lists every kind, in the order above.
var ErrorKinds = []ErrorKind{KindConnectionRefused, KindConnectionLost, KindHostUnknown, KindTimeout, KindAuthFailed,
	KindPermissionDenied, KindDatabaseMissing, KindTableMissing, KindColumnMissing, KindValueRejected, KindReadOnly,
	KindBadAnswer, KindReportedFailure, KindCancelled, KindOther}

// KindOf classifies err: a context deadline or cancellation first (the task's own
// deadline decides, whatever the driver made of it), then the Kind of a [ConnectorError],
// then network and system-call errors. It never looks at the error's text.
func KindOf(err error) ErrorKind {
	var ce *ConnectorError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCancelled
	case errors.As(err, &ce) && ce.Kind != "":
		return ce.Kind
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindConnectionRefused
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return KindTimeout
		}
		return KindHostUnknown
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return KindConnectionLost
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindConnectionRefused
	case errors.Is(err, os.ErrPermission): // a file privguard writes (the outbox)
		return KindPermissionDenied
	}
	return KindOther
}

// MapError reports a data map that does not match its store: a table or column that does
// not exist there (Kind is KindTableMissing or KindColumnMissing). The SQL connectors'
// CheckMap return it; serve refuses to start on it.
type MapError struct {
	Store  string
	Table  string
	Column string // empty when the table is missing
	Kind   ErrorKind
	// Type, when set, is the column's type where a date or time is needed (dated_by,
	// last_active_by): a text column would be compared as text.
	Type string
}

func (e *MapError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("dsar store %s: table %s: column %s is %s; dated_by and last_active_by need a date or time type (a text column is compared as text: '12/01/2026' sorts before '2025-...')", e.Store, e.Table, e.Column, e.Type)
	}
	if e.Column == "" {
		return fmt.Sprintf("dsar store %s: table %s does not exist (or the store's user cannot see it)", e.Store, e.Table)
	}
	return fmt.Sprintf("dsar store %s: table %s has no column %s", e.Store, e.Table, e.Column)
}
