package main

import (
	"context"
	"errors"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/portal"
)

// identityDirectory is the identity registry as the privacy centre's portal.Directory: a
// subject signs in with a code sent to a phone or email linked to it, and entering the code
// verifies the link.
type identityDirectory struct{ ids *identity.Registry }

var (
	_ portal.Directory     = identityDirectory{}
	_ portal.Canonicaliser = identityDirectory{}
)

// typeOf is what the subject typed: an email address if it has an "@", else a phone number.
func typeOf(typed string) identity.Type {
	if strings.Contains(typed, "@") {
		return identity.Email
	}
	return identity.Phone
}

// Find implements portal.Directory.
func (d identityDirectory) Find(ctx context.Context, value string) (portal.Link, bool, error) {
	l, err := d.ids.Lookup(ctx, typeOf(value), value)
	switch {
	case errors.Is(err, privguard.ErrNotFound):
		return portal.Link{}, false, nil
	case err != nil:
		return portal.Link{}, false, err
	}
	return portal.Link{Subject: l.Subject, Kind: string(l.Type), Hash: l.Hash, Masked: l.Masked, Verified: l.Verified}, true, nil
}

// Canonical implements portal.Canonicaliser: the type and the value as the registry
// normalises it (E.164, an email in lower case), whatever spelling was typed.
func (d identityDirectory) Canonical(value string) (string, error) {
	t := typeOf(value)
	n, err := identity.Normalise(t, value)
	if err != nil {
		return "", err
	}
	return string(t) + ":" + n, nil
}

// SendCode implements portal.Directory: a sign-in code to the link's address.
func (d identityDirectory) SendCode(ctx context.Context, l portal.Link, code, lang string) error {
	text := "Your privacy centre sign-in code is " + code + ". It expires in 10 minutes. / 您的隐私中心登录验证码为 " + code + "，10 分钟内有效。"
	switch lang {
	case "en":
		text = "Your privacy centre sign-in code is " + code + ". It expires in 10 minutes."
	case "zh-CN", "zh":
		text = "您的隐私中心登录验证码为 " + code + "，10 分钟内有效。"
	}
	return d.ids.Send(ctx, identity.Link{Subject: l.Subject, Type: identity.Type(l.Kind), Hash: l.Hash},
		identity.Message{Kind: identity.KindSignIn, Code: code, Lang: lang, Text: text})
}

// Confirm implements portal.Directory: the subject entered the code sent to the link.
func (d identityDirectory) Confirm(ctx context.Context, l portal.Link) error {
	_, err := d.ids.MarkVerified(ctx, l.Subject, identity.Type(l.Kind), l.Hash, "code")
	return err
}
