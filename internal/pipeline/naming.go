package pipeline

import (
	"crypto/md5"
	"encoding/hex"
	"path"
	"strings"

	"github.com/kilnbuild/kiln/internal/imageref"
)

// LocalRepo is the repository prefix of images in the local store.
const LocalRepo = imageref.LocalRepo

// Naming turns an import path into a repository name, as ko does.
type Naming struct {
	Repo                string // KO_DOCKER_REPO, --output's repository, or LocalRepo
	Bare                bool   // the repository alone
	BaseImportPaths     bool   // repo/<last element>
	PreserveImportPaths bool   // repo/<full import path>
}

// Name is the repository for importPath.
func (n Naming) Name(importPath string) string {
	switch {
	case n.Bare:
		return n.Repo
	case n.PreserveImportPaths:
		return n.Repo + "/" + strings.ToLower(importPath)
	case n.BaseImportPaths:
		return n.Repo + "/" + strings.ToLower(path.Base(importPath))
	}
	sum := md5.Sum([]byte(importPath)) // ko's naming scheme, not a security use
	return n.Repo + "/" + strings.ToLower(path.Base(importPath)) + "-" + hex.EncodeToString(sum[:])
}
