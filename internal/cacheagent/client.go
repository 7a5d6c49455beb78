package cacheagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Client reaches the archive's agent API with the pod's bound token, trusting only the
// archive's certificate.
type Client struct {
	URL, Token string
	HTTP       *http.Client
}

// NewClient reads the archive's URL and certificate (PEM) and the token in tokenFile.
func NewClient(archiveURL, caPEM, tokenFile string) (*Client, error) {
	if archiveURL == "" || caPEM == "" {
		return nil, errors.New("this cluster's flow-ci has no archive")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("the archive's certificate is not PEM")
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the archive token: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: nil}
	return &Client{URL: strings.TrimRight(archiveURL, "/"), Token: strings.TrimSpace(string(token)), HTTP: &http.Client{Transport: tr}}, nil
}

// errMiss: no entry of the cache matches.
var errMiss = errors.New("no entry matches")

// entry is a restored cache's body and what the archive says of it.
type entry struct {
	body        io.ReadCloser
	key, branch string
	size        int64
}

// get asks for the newest entry of cache name by key, then the restore keys, on the
// run's branch and then on def (the default branch).
func (c *Client) get(ctx context.Context, s Spec, key, def string) (entry, error) {
	q := url.Values{"key": {key}, "restore": s.RestoreKeys}
	if def != "" {
		q.Set("default", def)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/v1/agent/caches/"+url.PathEscape(s.Name)+"?"+q.Encode(), nil)
	if err != nil {
		return entry{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return entry{}, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return entry{}, errMiss
		}
		return entry{}, answer(resp)
	}
	return entry{body: resp.Body, key: resp.Header.Get("X-Flowci-Cache-Key"), branch: resp.Header.Get("X-Flowci-Cache-Branch"),
		size: resp.ContentLength}, nil
}

// put sends an entry of size bytes.
func (c *Client) put(ctx context.Context, name, key string, body io.Reader, size int64) error {
	q := url.Values{"key": {key}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.URL+"/v1/agent/caches/"+url.PathEscape(name)+"?"+q.Encode(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return answer(resp)
	}
	return nil
}

// answer is an error of the archive's answer, with its message.
func answer(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("the archive answered %s: %s", strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b)))
}
