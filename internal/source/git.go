package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Git sources talk to the remote through go-git's transport with the
// Fetcher's HTTP client (go-git's Clone would use a process-wide one):
// Resolve lists the remote's refs; Fetch asks for the resolved commit,
// depth 1 when the server can, and checks it out. No hooks run: go-git
// has none.

// errUnpeeled marks a tag whose commit the listing did not give.
var errUnpeeled = errors.New("tag not peeled")

var fullHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkGitURL allows http and https URLs without credentials to the
// hosts of GitAllow.
func (f *Fetcher) checkGitURL(raw string) error {
	if len(f.GitAllow) == 0 {
		return invalidf("git sources are off: start the server with --git-allow HOST, or upload an archive")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return invalidf("git URL %q is not an http(s) URL: use https://host/repo.git", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalidf("git URL scheme %q is not supported: use http or https (ssh, git, file and ext are refused)", u.Scheme)
	}
	if u.User != nil {
		return invalidf("git URL %s carries credentials: they would be stored in the record; use a public repository", u.Redacted())
	}
	if !hostAllowed(f.GitAllow, u) {
		return invalidf("git host %s is not one this server clones from (--git-allow)", u.Host)
	}
	return nil
}

// hostAllowed matches u's host against the patterns: without a port a
// pattern matches the host name, with one the host and port.
func hostAllowed(patterns []string, u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	hostPort := host
	if p := u.Port(); p != "" {
		hostPort = net.JoinHostPort(host, p)
	}
	for _, pat := range patterns {
		pat = strings.ToLower(pat)
		name := host
		if _, _, err := net.SplitHostPort(pat); err == nil {
			name = hostPort
		}
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// CheckGitAllow refuses a --git-allow pattern that can never match.
func CheckGitAllow(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.ContainsAny(p, "/@") {
			return fmt.Errorf("%q is not a host glob: give one like example.com, *.example.com, 127.0.0.1:8080 or *", p)
		}
	}
	return nil
}

// httpClient is the client for git: Fetcher.HTTP (or the default) with
// every redirect held to the same rules as the URL it leaves.
func (f *Fetcher) httpClient() *http.Client {
	c := http.DefaultClient
	if f.HTTP != nil {
		c = f.HTTP
	}
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := f.checkGitURL(req.URL.String()); err != nil {
			return fmt.Errorf("git redirect: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// remote is one listing of a git remote.
type remote struct {
	sess transport.UploadPackSession
	ar   *packp.AdvRefs
	b    *budget // the pack's bytes as received count against it
}

func (f *Fetcher) openRemote(ctx context.Context, rawURL string, b *budget) (*remote, error) {
	if err := f.checkGitURL(rawURL); err != nil {
		return nil, err
	}
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, invalidf("git URL %q: %v", rawURL, err)
	}
	sess, err := githttp.NewClient(f.httpClient()).NewUploadPackSession(ep, nil)
	if err != nil {
		return nil, fmt.Errorf("opening git remote %s: %w", rawURL, err)
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	switch {
	case errors.Is(err, transport.ErrRepositoryNotFound):
		sess.Close()
		return nil, invalidf("git repository %s not found: check the URL", rawURL)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		sess.Close()
		return nil, invalidf("git repository %s needs credentials: only public repositories are supported", rawURL)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		sess.Close()
		return nil, invalidf("git repository %s is empty", rawURL)
	case errors.Is(err, ErrInvalid): // a redirect refused
		sess.Close()
		return nil, invalidf("git repository %s redirects where this server does not clone from", rawURL)
	case err != nil:
		sess.Close()
		return nil, fmt.Errorf("listing git remote %s: %w", rawURL, err)
	}
	return &remote{sess: sess, ar: ar, b: b}, nil
}

// commit resolves ref ("" is HEAD; a branch, a tag, a full ref name or a
// full commit hash) to a commit, and reports whether it is a tip the
// remote advertises (so it can be fetched alone, at depth 1).
func (r *remote) commit(ref string) (plumbing.Hash, bool, error) {
	if ref == "" || ref == "HEAD" {
		if r.ar.Head == nil {
			return plumbing.ZeroHash, false, invalidf("the git repository has no HEAD: give a ref")
		}
		return *r.ar.Head, true, nil
	}
	if fullHash.MatchString(ref) {
		h := plumbing.NewHash(ref)
		return h, r.advertised(h), nil
	}
	names := []string{"refs/heads/" + ref, "refs/tags/" + ref}
	if strings.HasPrefix(ref, "refs/") {
		names = []string{ref}
	}
	for _, n := range names {
		if h, ok := r.ar.Peeled[n]; ok { // an annotated tag's commit
			return h, true, nil
		}
		if h, ok := r.ar.References[n]; ok {
			if strings.HasPrefix(n, "refs/tags/") {
				return h, true, errUnpeeled
			}
			return h, true, nil
		}
	}
	return plumbing.ZeroHash, false, invalidf("git ref %q is not in the repository: give a branch, a tag or a full 40-hex commit hash", ref)
}

func (r *remote) advertised(h plumbing.Hash) bool {
	if r.ar.Head != nil && *r.ar.Head == h {
		return true
	}
	for _, m := range []map[string]plumbing.Hash{r.ar.References, r.ar.Peeled} {
		for _, v := range m {
			if v == h {
				return true
			}
		}
	}
	return false
}

// fetch downloads commit into st: alone and at depth 1 when it is an
// advertised tip, else with every advertised ref's history.
func (r *remote) fetch(ctx context.Context, st storage.Storer, commit plumbing.Hash, tip bool) error {
	if err := r.fetchObject(ctx, st, commit, tip); err != nil {
		return err
	}
	if _, err := st.EncodedObject(plumbing.CommitObject, commit); err != nil {
		return invalidf("commit %s is not in the git repository: give a commit that a branch or tag reaches", commit)
	}
	return nil
}

func (r *remote) fetchObject(ctx context.Context, st storage.Storer, commit plumbing.Hash, tip bool) error {
	req := packp.NewUploadPackRequestFromCapabilities(r.ar.Capabilities)
	if tip {
		req.Wants = []plumbing.Hash{commit}
		if r.ar.Capabilities.Supports(capability.Shallow) {
			req.Depth = packp.DepthCommits(1)
			if err := req.Capabilities.Set(capability.Shallow); err != nil {
				return err
			}
		}
	} else {
		seen := map[plumbing.Hash]bool{}
		for _, h := range r.ar.References {
			if !seen[h] {
				seen[h] = true
				req.Wants = append(req.Wants, h)
			}
		}
	}
	if r.ar.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	resp, err := r.sess.UploadPack(ctx, req)
	if err != nil {
		return fmt.Errorf("fetching git commit %s: %w", commit, err)
	}
	defer resp.Close()
	if len(resp.Shallows) > 0 {
		if err := st.SetShallow(resp.Shallows); err != nil {
			return err
		}
	}
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	spooled, err := spoolPack(r.b.reader(pack), r.b)
	if err != nil {
		return err
	}
	defer dropPack(spooled)
	if err := packfile.UpdateObjectStorage(st, spooled); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("fetching git commit %s: %w", commit, err)
	}
	return nil
}

// peel returns the commit an advertised tag names, for servers that do
// not advertise peeled tags: it fetches the tag object and follows it.
func (r *remote) peel(ctx context.Context, h plumbing.Hash) (plumbing.Hash, error) {
	st := memory.NewStorage()
	if err := r.fetchObject(ctx, st, h, true); err != nil {
		return plumbing.ZeroHash, err
	}
	for range 10 { // a tag of a tag of … a commit
		t, err := object.GetTag(st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			if _, err := st.EncodedObject(plumbing.CommitObject, h); err != nil {
				return plumbing.ZeroHash, invalidf("git tag names %s, which is not a commit: give a branch or a commit", h)
			}
			return h, nil
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading git tag %s: %w", h, err)
		}
		h = t.Target
	}
	return plumbing.ZeroHash, invalidf("git tag %s nests too deeply", h)
}

func (f *Fetcher) resolveGit(ctx context.Context, g Git, subdir string) (Resolved, error) {
	r, err := f.openRemote(ctx, g.URL, f.newBudget())
	if err != nil {
		return Resolved{}, err
	}
	defer r.sess.Close()
	commit, tip, err := r.commit(g.Ref)
	if errors.Is(err, errUnpeeled) {
		commit, err = r.peel(ctx, commit)
	}
	if err != nil {
		return Resolved{}, err
	}
	if !tip { // a commit below the tips: prove it exists now, not at build time
		if err := r.fetch(ctx, memory.NewStorage(), commit, false); err != nil {
			return Resolved{}, err
		}
	}
	res := Resolved{}
	res.Kind, res.Ref, res.Revision, res.Subdir = KindGit, g.URL, commit.String(), subdir
	return res, nil
}

// fetchGit checks the resolved commit out into dir, with the repository's
// metadata in dir/.git only while it does.
func (f *Fetcher) fetchGit(ctx context.Context, res Resolved, dir string) error {
	if !fullHash.MatchString(res.Revision) {
		return invalidf("git revision %q is not a full commit hash", res.Revision)
	}
	b := f.newBudget() // the pack as received, and all written into dir
	r, err := f.openRemote(ctx, res.Ref, b)
	if err != nil {
		return err
	}
	defer r.sess.Close()
	commit := plumbing.NewHash(res.Revision)
	gitDir := filepath.Join(dir, ".git")
	defer os.RemoveAll(gitDir)
	st := filesystem.NewStorageWithOptions(budgetFS{osfs.New(gitDir, osfs.WithBoundOS()), b}, cache.NewObjectLRUDefault(), filesystem.Options{LargeObjectThreshold: largeObject})
	if err := r.fetch(ctx, st, commit, r.advertised(commit)); err != nil {
		return err
	}
	repo, err := git.Init(st, budgetFS{osfs.New(dir, osfs.WithBoundOS()), b})
	if err != nil {
		return fmt.Errorf("checking out %s: %w", commit, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("checking out %s: %w", commit, err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: commit, Force: true}); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("checking out %s: %w", commit, err)
	}
	if err := st.Close(); err != nil {
		return err
	}
	return os.RemoveAll(gitDir)
}
