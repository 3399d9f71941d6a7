package token

// Verifications returns how many tokens went through full (uncached)
// verification.
func (v *Validator) Verifications() int64 { return v.verifications.Load() }

// CachedResults returns the number of entries in the result cache.
func (v *Validator) CachedResults() int {
	if v.results == nil {
		return 0
	}
	return v.results.len()
}
