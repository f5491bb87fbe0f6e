package invacache_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsLinks: every relative link in the repository's guides names a
// file that exists, and every in-page link (#anchor) a heading of that page
// (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens).
func TestDocsLinks(t *testing.T) {
	var (
		fence   = regexp.MustCompile("(?s)```.*?```")
		heading = regexp.MustCompile(`(?m)^#+ (.*)$`)
		link    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
		punct   = regexp.MustCompile(`[^\w\- ]`)
	)
	slug := func(h string) string {
		return strings.ReplaceAll(punct.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
	}
	for _, md := range []string{"README.md", "RELEASING.md", "metrics/README.md", "cmd/invacache/README.md",
		"invalidation/drivers/redis/README.md", "docs/KNOWN_LIMITS.md", "example/httpservice/README.md"} {
		data, err := os.ReadFile(md)
		if err != nil {
			t.Errorf("%s: %v", md, err)
			continue
		}
		text := fence.ReplaceAllString(string(data), "")
		anchors := map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(text, -1) {
			anchors[slug(m[1])] = true
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			if path == "" {
				if !anchors[anchor] {
					t.Errorf("%s: link %q names no heading of the page", md, target)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(md), path)); err != nil {
				t.Errorf("%s: link %q: %v", md, target, err)
			}
		}
	}
}
