package base

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrPlatformMissing is wrapped by Base.Image when the base has no image for
// the requested platform.
var ErrPlatformMissing = errors.New("base image lacks the platform")

// Kind classifies why a base image could not be resolved.
type Kind int

const (
	// Unreachable: the registry could not be contacted or failed.
	Unreachable Kind = iota + 1
	// Unauthorized: the registry refused the credentials (or their absence).
	Unauthorized
	// NotFound: the repository, tag, digest or layout tag does not exist.
	NotFound
	// Invalid: the reference does not parse, or the layout or manifest is broken.
	Invalid
)

func (k Kind) String() string {
	switch k {
	case Unreachable:
		return "unreachable"
	case Unauthorized:
		return "unauthorized"
	case NotFound:
		return "not found"
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failure to resolve or read the base image Ref.
type Error struct {
	Ref  string
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "base image %q: %s", e.Ref, e.what())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(foldCause(e.Err.Error()))
	}
	if a := e.advice(); a != "" {
		b.WriteString("; ")
		b.WriteString(a)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) what() string {
	switch e.Kind {
	case Unreachable:
		return "registry unreachable"
	case Unauthorized:
		return "access denied"
	case NotFound:
		return "not found"
	case Invalid:
		return "invalid"
	}
	return "failed"
}

func (e *Error) advice() string {
	layout := strings.HasPrefix(e.Ref, ociPrefix)
	switch e.Kind {
	case Unreachable:
		return "check the name and that the registry is reachable"
	case Unauthorized:
		return "log in with `podman login` or `docker login`"
	case NotFound:
		if layout {
			return "check the directory and tag"
		}
		return "check the repository, tag or digest"
	case Invalid:
		if layout {
			return "use oci:DIR or oci:DIR:TAG naming an OCI image layout"
		}
		return "use static, scratch, oci:DIR[:TAG] or a reference like registry/repo:tag"
	}
	return ""
}

// maxCause bounds the cause in Error so that, e.g., an HTML error page from
// a proxy does not flood the terminal.
const maxCause = 300

// foldCause folds s onto a single line of bounded length. Unlike
// oneline.First it keeps every line: a base's cause is often a proxy's
// multi-line page whose useful part is not the first line.
func foldCause(s string) string {
	if strings.ContainsAny(s, "\r\n\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	if len(s) > maxCause {
		cut := maxCause
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// classify wraps a failure talking to a registry about ref.
func classify(ref string, err error) error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	return &Error{Ref: ref, Kind: kindOf(err), Err: err}
}

func kindOf(err error) Kind {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return Unauthorized
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return NotFound
			}
		}
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return Unauthorized
		case te.StatusCode == http.StatusNotFound:
			return NotFound
		case te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusRequestTimeout:
			return Unreachable
		}
		return Invalid
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &oe), errors.As(err, &de), errors.As(err, &ne),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Unreachable
	}
	return Invalid
}

// missingError reports a platform the base lacks; it wraps ErrPlatformMissing.
type missingError struct {
	base string
	want v1.Platform
	have []v1.Platform
	// hasText, when set, replaces the list of platforms in the message.
	hasText string
}

func (e *missingError) Error() string {
	has := "none"
	switch {
	case e.hasText != "":
		has = e.hasText
	case len(e.have) > 0:
		names := make([]string, len(e.have))
		for i, p := range e.have {
			names[i] = platformString(p)
		}
		has = strings.Join(names, ", ")
	}
	return fmt.Sprintf("base %q has no %s image (it has %s)", e.base, platformString(e.want), has)
}

func (e *missingError) Unwrap() error { return ErrPlatformMissing }

// platformString is os/arch[/variant], or "unknown" for an empty platform.
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if s == "/" {
		return "unknown"
	}
	return s
}
