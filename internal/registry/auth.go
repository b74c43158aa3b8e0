package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Access says who may read and write. The zero value lets anyone read and
// no one write.
type Access struct {
	// Users maps user names to bcrypt hashes (an htpasswd file).
	Users map[string][]byte
	// Tokens are bearer tokens that grant read and write.
	Tokens []string
	// Private are path.Match patterns of repositories that only
	// authenticated clients may read.
	Private []string
	// AnonymousWrite lets clients without credentials push and delete,
	// which is safe only when the registry listens on loopback alone.
	AnonymousWrite bool
}

// HasCredentials reports whether any user or token is configured.
func (a Access) HasCredentials() bool { return len(a.Users) > 0 || len(a.Tokens) > 0 }

// Validate rejects settings that cannot work.
func (a Access) Validate() error {
	for _, p := range a.Private {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("private repository pattern %q: %v", p, err)
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

// ReadTokens reads bearer tokens, one a line.
func ReadTokens(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var tokens []string
	for _, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("token file %s has no tokens", file)
	}
	return tokens, nil
}

// authenticate reports whether req carries valid credentials. Credentials
// that are present but wrong are an error, never a silent anonymous.
// bcrypt is slow on purpose, so a verified password is remembered (as its
// hash) for the life of the registry.
func (r *Registry) authenticate(req *http.Request) (bool, error) {
	a := r.access
	h := req.Header.Get("Authorization")
	if h == "" || !a.HasCredentials() {
		// With no users or tokens there is nothing to check credentials
		// against: a client that sends some anyway (stored for the host)
		// is anonymous, not refused.
		return false, nil
	}
	if user, pass, ok := req.BasicAuth(); ok {
		sum := sha256.Sum256([]byte(user + "\x00" + pass))
		if _, ok := r.verified.Load(sum); ok {
			return true, nil
		}
		if hash, known := a.Users[user]; known && bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil {
			r.verified.Store(sum, true)
			return true, nil
		}
		return false, errUnauthorized("invalid user name or password")
	}
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		for _, t := range a.Tokens {
			if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
				return true, nil
			}
		}
		return false, errUnauthorized("invalid bearer token")
	}
	return false, errUnauthorized("unsupported authorization scheme: use basic or bearer")
}

func (a Access) private(name string) bool {
	for _, p := range a.Private {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// canRead reports whether a client may read repository name.
func (a Access) canRead(authed bool, name string) bool { return authed || !a.private(name) }

// canWrite reports whether a client may push to or delete from a repository.
func (a Access) canWrite(authed bool) bool { return authed || a.AnonymousWrite }
