package registry

// SetCompare replaces the password comparison (bcrypt) of r, for tests
// that count comparisons.
func SetCompare(r *Registry, f func(hash, password []byte) error) { r.auth.compare = f }

// ClientOf is clientOf, for tests.
var ClientOf = clientOf
