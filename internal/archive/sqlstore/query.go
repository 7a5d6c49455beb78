package sqlstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Page sizes of List.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// pageSize is the number of records a page holds for Query.Limit.
func pageSize(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("limit %d is negative", limit)
	case limit == 0:
		return defaultLimit, nil
	case limit > maxLimit:
		return maxLimit, nil
	}
	return limit, nil
}

// cursor is where a page ended: the last record's place in the list's order. Paging
// by position instead of by offset keeps pages stable while records are added.
type cursor struct {
	oldest  bool
	created int64 // Unix nanoseconds
	uid     string
}

var errCursor = errors.New("the cursor is not one List returned")

func (c cursor) encode() string {
	order := "n"
	if c.oldest {
		order = "o"
	}
	raw := order + "." + strconv.FormatInt(c.created, 10) + "." + c.uid
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errCursor
	}
	parts := strings.SplitN(string(raw), ".", 3)
	if len(parts) != 3 || parts[0] != "n" && parts[0] != "o" {
		return cursor{}, errCursor
	}
	created, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || checkUID(parts[2]) != nil {
		return cursor{}, errCursor
	}
	return cursor{oldest: parts[0] == "o", created: created, uid: parts[2]}, nil
}

// commitRange is the range of object names that start with prefix, a lowercase hex
// string: [prefix, hi), hi being prefix with its last digit raised by one in the
// order both byte-wise and locale collations give digits and letters ('9' < 'a').
// A range, unlike LIKE, uses the index on every database and is case-sensitive on
// both.
func commitRange(prefix string) (lo, hi string) {
	last := prefix[len(prefix)-1]
	next := last + 1
	if last == '9' {
		next = 'a'
	}
	return prefix, prefix[:len(prefix)-1] + string(rune(next))
}

// conds collects a query's WHERE conditions and their arguments, numbering the
// placeholders ($1, $2, ...) as both PostgreSQL and SQLite read them.
type conds struct {
	where []string
	args  []any
}

// add appends cond, whose "?"s stand for args in order.
func (c *conds) add(cond string, args ...any) {
	for _, a := range args {
		c.args = append(c.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(c.args)), 1)
	}
	c.where = append(c.where, cond)
}

func (c *conds) sql() string {
	if len(c.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.where, " AND ")
}

// listQuery is the SELECT of one page of q: limit+1 rows, the extra one saying
// whether a next page exists.
func listQuery(q archive.Query, limit int) (string, []any, error) {
	var c conds
	if err := filters(&c, q); err != nil {
		return "", nil, err
	}
	order, cmp := "DESC", "<"
	if q.Oldest {
		order, cmp = "ASC", ">"
	}
	if q.After != "" {
		after, err := decodeCursor(q.After)
		if err != nil {
			return "", nil, err
		}
		if after.oldest != q.Oldest {
			return "", nil, errors.New("the cursor is from a list in the other order")
		}
		c.add("(created, uid) "+cmp+" (?, ?)", after.created, after.uid)
	}
	c.args = append(c.args, limit+1)
	query := "SELECT " + recordColumns + " FROM archive_records" + c.sql() +
		" ORDER BY created " + order + ", uid " + order + " LIMIT $" + strconv.Itoa(len(c.args))
	return query, c.args, nil
}

// filters adds the conditions of q's fields other than its order and cursor.
func filters(c *conds, q archive.Query) error {
	if q.Namespace != "" {
		if err := checkNamespace(q.Namespace); err != nil {
			return err
		}
		c.add("namespace = ?", q.Namespace)
	}
	for _, f := range []struct{ col, val string }{
		{"repo_url", q.RepoURL}, {"branch", q.Branch}, {"phase", q.Phase},
	} {
		if f.val != "" {
			c.add(f.col+" = ?", f.val)
		}
	}
	if q.Commit != "" {
		prefix, err := normalCommit(q.Commit)
		if err != nil {
			return err
		}
		lo, hi := commitRange(prefix)
		c.add("commit_sha >= ? AND commit_sha < ?", lo, hi)
	}
	if !q.Since.IsZero() {
		if err := checkTime("Since", q.Since); err != nil {
			return err
		}
		c.add("created >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		if err := checkTime("Until", q.Until); err != nil {
			return err
		}
		c.add("created < ?", q.Until.UnixNano())
	}
	return nil
}
