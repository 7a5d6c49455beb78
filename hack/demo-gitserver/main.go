// Command demo-gitserver serves the bare repositories under a directory over smart HTTP
// with the real `git http-backend`, for `make demo`: the local cluster's pods clone from
// it on the bridge gateway. It is a development aid, not part of the operator.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/flow-ci/flow-ci/internal/gitserver"
)

func main() {
	root := flag.String("root", "", "Directory holding bare repositories (e.g. hello.git).")
	addr := flag.String("addr", "10.88.0.1:8418", "Listen address, reachable from the cluster's pods.")
	flag.Parse()
	h, err := gitserver.NewHandler(*root)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving git repositories under %s on http://%s/", *root, *addr)
	log.Fatal(srv.ListenAndServe())
}
