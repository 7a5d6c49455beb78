package gitsource

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

func TestListBranches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gittest.HTTPOptions{})
	empty := gittest.NewRepoIn(t, f.repo.Root, "empty.git", nil)
	ctx := context.Background()

	got, err := ListBranches(ctx, f.url, nil, loopback)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"main": f.repo.RevParse(t, "main"), "feature/x": f.repo.RevParse(t, "feature/x")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("branches (-want +got):\n%s", diff)
	}

	got, err = ListBranches(ctx, f.srv.URL+"/"+empty.Name, nil, loopback)
	if err != nil || len(got) != 0 {
		t.Errorf("empty repository: got %v, %v; want no branches and no error", got, err)
	}
	_, err = ListBranches(ctx, f.srv.URL+"/missing.git", nil, loopback)
	wantErr(t, err, ErrRepositoryNotFound, true)
	_, err = ListBranches(ctx, f.url, nil) // loopback is denied by default
	wantErr(t, err, ErrAddressNotAllowed, true)
}
