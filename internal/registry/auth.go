package registry

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Access says who may read and write. The zero value lets anyone read and
// no one write.
type Access struct {
	// Users maps user names to bcrypt hashes (an htpasswd file).
	Users map[string][]byte
	// Tokens are bearer tokens that grant read and write, each at least
	// MinTokenLength characters.
	Tokens []string
	// Private are patterns of repositories that only authenticated
	// clients may read (see MatchRepository).
	Private []string
	// AnonymousWrite lets clients without credentials push and delete,
	// which is safe only when the registry listens on loopback alone.
	AnonymousWrite bool
}

// HasCredentials reports whether any user or token is configured.
func (a Access) HasCredentials() bool { return len(a.Users) > 0 || len(a.Tokens) > 0 }

// MinTokenLength is the shortest bearer token accepted: 32 characters,
// which is at least 32 bytes of entropy for random tokens written as 43
// base64 or 64 hex characters (openssl rand -hex 32), and far beyond
// guessing for any token drawn at random.
const MinTokenLength = 32

// Validate rejects settings that cannot work.
func (a Access) Validate() error {
	for _, p := range a.Private {
		if err := validPattern(p); err != nil {
			return err
		}
	}
	for i, t := range a.Tokens {
		if len(t) < MinTokenLength {
			return fmt.Errorf("bearer token %d is %d characters: tokens need at least %d (make one with: openssl rand -hex 32)", i+1, len(t), MinTokenLength)
		}
	}
	if len(a.Private) > 0 && !a.HasCredentials() {
		return fmt.Errorf("private repositories need credentials: give an htpasswd file or a token file")
	}
	return nil
}

// ReadHtpasswd reads an htpasswd file of bcrypt entries (htpasswd -B).
func ReadHtpasswd(file string) (map[string][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd file %s:%d: want user:bcrypt-hash", file, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd file %s:%d: user %s: only bcrypt hashes are accepted (htpasswd -B)", file, n, user)
		}
		users[user] = []byte(hash)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("htpasswd file %s has no users", file)
	}
	return users, nil
}

// ReadTokens reads bearer tokens, one a line; blank lines and lines
// starting with # are skipped. A token shorter than MinTokenLength is an
// error that names its line.
func ReadTokens(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var tokens []string
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) < MinTokenLength {
			return nil, fmt.Errorf("token file %s:%d: the token is %d characters, tokens need at least %d (make one with: openssl rand -hex 32)", file, i+1, len(t), MinTokenLength)
		}
		tokens = append(tokens, t)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("token file %s has no tokens", file)
	}
	return tokens, nil
}

// SecretFileWarning says what is wrong with the permissions of a file of
// secrets (an htpasswd or token file) that others than its owner may
// read, or "" when nothing is.
func SecretFileWarning(file string) string {
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return ""
	}
	return fmt.Sprintf("%s is readable by group or others (mode %04o): chmod 600 it", file, fi.Mode().Perm())
}

// authenticator checks the credentials of requests against Access (see
// authenticate).
type authenticator struct {
	access   Access
	clock    Clock
	verified sync.Map // sha256(user, password) → true, once bcrypt agreed

	// Password checks: a semaphore of Limits.PasswordChecks, the hash an
	// unknown user is checked against, the failed-login records.
	checks    chan struct{}
	dummyHash []byte
	compare   func(hash, password []byte) error
	logins    *logins
}

func newAuthenticator(access Access, lim Limits, clock Clock) (*authenticator, error) {
	a := &authenticator{
		access: access, clock: clock,
		checks:  make(chan struct{}, lim.PasswordChecks),
		compare: bcrypt.CompareHashAndPassword,
		logins:  newLogins(lim),
	}
	if len(access.Users) > 0 {
		var err error
		if a.dummyHash, err = dummyHash(access.Users); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// authenticate reports whether req carries valid credentials. Credentials
// that are present but wrong are an error, never a silent anonymous.
// bcrypt is slow on purpose, so a verified password is remembered (as its
// hash) for the life of the registry. An unknown user costs one bcrypt
// comparison too (against a dummy hash), so that timing does not tell
// which users exist; at most Limits.PasswordChecks comparisons run at
// once, and failed logins slow their client and user name down (logins).
func (au *authenticator) authenticate(req *http.Request) (bool, error) {
	a := au.access
	h := req.Header.Get("Authorization")
	if h == "" || !a.HasCredentials() {
		// With no users or tokens there is nothing to check credentials
		// against: a client that sends some anyway (stored for the host)
		// is anonymous, not refused.
		return false, nil
	}
	ip := "ip:" + clientOf(req)
	if user, pass, ok := req.BasicAuth(); ok {
		sum := sha256.Sum256([]byte(user + "\x00" + pass))
		if _, ok := au.verified.Load(sum); ok {
			return true, nil
		}
		keys := []string{ip, "user:" + user}
		if err := au.loginWait(keys); err != nil {
			return false, err
		}
		select {
		case au.checks <- struct{}{}:
		case <-req.Context().Done():
			return false, errTooMany("gave up waiting for a password check")
		}
		// Failures recorded while this one queued count too.
		if err := au.loginWait(keys); err != nil {
			<-au.checks
			return false, err
		}
		hash, known := a.Users[user]
		if !known {
			hash = au.dummyHash
		}
		ok := au.compare(hash, []byte(pass)) == nil && known
		<-au.checks
		if ok {
			au.verified.Store(sum, true)
			au.logins.succeeded(keys...)
			return true, nil
		}
		au.logins.failed(au.clock.Now(), keys...)
		return false, errUnauthorized("invalid user name or password")
	}
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		if err := au.loginWait([]string{ip}); err != nil {
			return false, err
		}
		tok = strings.TrimSpace(tok)
		for _, t := range a.Tokens {
			if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
				return true, nil
			}
		}
		au.logins.failed(au.clock.Now(), ip)
		return false, errUnauthorized("invalid bearer token")
	}
	return false, errUnauthorized("unsupported authorization scheme: use basic or bearer")
}

// loginWait refuses a try while its client or user name must wait.
func (au *authenticator) loginWait(keys []string) error {
	if w := au.logins.wait(au.clock.Now(), keys...); w > 0 {
		e := errTooMany("too many failed logins: try again later")
		e.RetryAfter = strconv.Itoa(int((w + time.Second - 1) / time.Second))
		return e
	}
	return nil
}

// dummyHash is a bcrypt hash of a random password at the highest cost of
// users' hashes: what an unknown user's password is compared with.
func dummyHash(users map[string][]byte) ([]byte, error) {
	cost := bcrypt.MinCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	return bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
}

func (a Access) private(name string) bool {
	for _, p := range a.Private {
		if MatchRepository(p, name) {
			return true
		}
	}
	return false
}

// MatchRepository reports whether repository name matches pattern. Both
// are read as segments separated by "/", matched one to one:
//   - a segment without metacharacters matches itself only: "team"
//     matches the repository team, not team/app;
//   - within a segment, path.Match's syntax applies: "*" is any run of
//     characters, "?" one character, "[a-z]" a class; none crosses "/";
//   - a last segment that is exactly "*" or "**" matches one or more
//     whole segments: "team/*" and "team/**" match team/app and
//     team/secret/nested (not team itself), and "*" alone matches every
//     repository.
//
// "**" is refused anywhere but as the last segment.
func MatchRepository(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "/"), strings.Split(name, "/")
	for i, p := range ps {
		if i == len(ps)-1 && (p == "*" || p == "**") {
			return len(ns) > i
		}
		if i >= len(ns) {
			return false
		}
		if ok, _ := path.Match(p, ns[i]); !ok {
			return false
		}
	}
	return len(ns) == len(ps)
}

func validPattern(p string) error {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "" {
			return fmt.Errorf("private repository pattern %q has an empty segment", p)
		}
		if strings.Contains(s, "**") && (s != "**" || i != len(segs)-1) {
			return fmt.Errorf("private repository pattern %q: ** may only be the whole last segment", p)
		}
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("private repository pattern %q: %v", p, err)
		}
	}
	return nil
}

// canRead reports whether a client may read repository name.
func (a Access) canRead(authed bool, name string) bool { return authed || !a.private(name) }

// canWrite reports whether a client may push to or delete from a repository.
func (a Access) canWrite(authed bool) bool { return authed || a.AnonymousWrite }
