package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// allow decides whether r may call the API. A token, when the server has
// tokens, must be one of them. Without a token: a read passes under
// PublicRead; with tokens configured, nothing else passes; with none, only
// loopback clients do.
func (s *Service) allow(r *http.Request, read bool) error {
	if len(s.tokens) > 0 {
		if tok, ok := bearer(r); ok {
			if s.validToken(tok) {
				return nil
			}
			return errorf(http.StatusUnauthorized, "the bearer token is not valid")
		}
	}
	if read && s.cfg.PublicRead {
		return nil
	}
	if len(s.tokens) > 0 {
		return errorf(http.StatusUnauthorized, "this API needs a bearer token: send Authorization: Bearer TOKEN")
	}
	if loopback(r.RemoteAddr) {
		return nil
	}
	return errorf(http.StatusForbidden, "the server has no API tokens, so only loopback clients may call it: start it with --api-token-file")
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// validToken compares tok with every token in constant time: the hashes
// have one length, and no comparison stops early.
func (s *Service) validToken(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	ok := 0
	for _, t := range s.tokens {
		ok |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return ok == 1
}

func loopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
