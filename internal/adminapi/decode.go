package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/privguard/privguard"
)

// Body limits.
const (
	MaxConsentBody = 64 << 10
	MaxNoticeBody  = privguardNoticeText + 64<<10
	// privguardNoticeText mirrors consent.MaxNoticeTextLen.
	privguardNoticeText = 1 << 20
)

// newValidator returns a validator that names fields by their JSON names.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// decode reads a JSON body of at most limit bytes into dst and validates it. Errors are
// problems: 415 for another media type, 413 for a body over the limit, 400 for malformed
// JSON or unknown fields, 422 for values that break a validation rule.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return privguard.NewProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType,
				"Unsupported media type", "send Content-Type: application/json")
		}
	} else {
		return privguard.NewProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType,
			"Unsupported media type", "send Content-Type: application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonProblem(err, limit)
		}
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body holds more than one JSON value")
	}
	if err := s.validate.Struct(dst); err != nil {
		return validationProblem(err)
	}
	return nil
}

func jsonProblem(err error, limit int64) *privguard.Problem {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
			fmt.Sprintf("the body must be at most %d bytes", limit))
	case errors.As(err, &syn):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON",
			fmt.Sprintf("syntax error at byte %d", syn.Offset))
	case errors.As(err, &typ):
		p := privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON",
			fmt.Sprintf("%s must be a JSON %s", typ.Field, jsonKind(typ.Type)))
		p.Field = typ.Field
		return p
	case errors.Is(err, io.EOF):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "unknown field")
		if len(field) <= 64 {
			p.Field = field
		}
		return p
	}
	return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body is not valid JSON for this API")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	}
	return "number"
}

// validationProblem lists every failing field with the rule it broke.
func validationProblem(err error) *privguard.Problem {
	p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", "")
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) {
		return p
	}
	for _, fe := range ve {
		ns := fe.Namespace()
		if _, rest, ok := strings.Cut(ns, "."); ok {
			ns = rest // drop the struct name
		}
		rule := fe.Tag()
		if fe.Param() != "" {
			rule += "=" + fe.Param()
		}
		p.Errors = append(p.Errors, privguard.FieldError{Field: ns, Rule: rule})
	}
	if len(p.Errors) > 0 {
		p.Field = p.Errors[0].Field
		p.Detail = fmt.Sprintf("%s fails %s", p.Errors[0].Field, p.Errors[0].Rule)
	}
	return p
}
