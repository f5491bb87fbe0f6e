// Package suggest finds the known name closest to a misspelt one, for the
// "did you mean" of configuration errors.
package suggest

import (
	"fmt"
	"strings"
)

// DidYouMean returns ` (did you mean "name"?)` for the name in names closest
// to key (ignoring case) when it is close enough to be a typo, else "".
// Among equally close names the first in names wins.
func DidYouMean(key string, names []string) string {
	if key == "" {
		return ""
	}
	lk := strings.ToLower(key)
	best, bestD := "", max(2, len(key)/3)+1
	for _, n := range names {
		if d := distance(lk, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
