//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
)

// archivedLogInBrowser opens the page of a deleted run in Chromium, through `flowci ui`
// run as the reader of kubeconfig, and checks that step 0's log pane, streamed from
// the archive, holds exactly want: the same length and sha256, hashed in the browser.
func archivedLogInBrowser(t *testing.T, g Gomega, kubeconfig, ns, name string, want []byte) {
	base, stop := startUI(t, g, kubeconfig)
	defer stop()

	ctx, cancel := context.WithTimeout(browser(t), 5*time.Minute)
	defer cancel()
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(base+"/runs/"+ns+"/"+name))).To(Succeed())
	note, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#step-0 summary")))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(note).To(ContainSubstring("(from the run archive)"))
	var length int
	g.Eventually(func(g Gomega) {
		length, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("#step-0 pre").textContent.length`))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(length).To(BeNumerically(">=", len(want)))
	}).WithTimeout(4*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "the pane holds %d of %d bytes", length, len(want))
	digest, err := chromedp.Run(ctx, chromedp.Evaluate[string](`crypto.subtle.digest("SHA-256", new TextEncoder().encode(document.querySelector("#step-0 pre").textContent))
		.then(b => Array.from(new Uint8Array(b)).map(x => x.toString(16).padStart(2, "0")).join(""))`, chromedp.EvalAwaitPromise))
	g.Expect(err).NotTo(HaveOccurred())
	sum := sha256.Sum256(want)
	g.Expect(length).To(Equal(len(want)), "no line twice")
	g.Expect(digest).To(Equal(hex.EncodeToString(sum[:])), "the browser shows every line once")
	screenshot(t, ctx, "archived-run.png")
	t.Logf("Chromium shows the deleted run's %d-byte log from the archive, sha256 %s; %q", length, digest[:12], note)
}

// startUI runs flowci ui on this machine as the holder of kubeconfig, reading the
// archive, and returns its address and how to stop it.
func startUI(t *testing.T, g Gomega, kubeconfig string) (string, func()) {
	return runUI(t, g, []string{"KUBECONFIG=" + kubeconfig}, "--archive-url", "https://"+archiveIP(g))
}

// artifactInBrowser opens the page of a run that is gone, follows the link of the
// artifact at path in Chromium, and checks the bytes it downloads against want.
func artifactInBrowser(t *testing.T, g Gomega, kubeconfig, ns, name, path string, want []byte) {
	base, stop := startUI(t, g, kubeconfig)
	defer stop()
	ctx, cancel := context.WithTimeout(browser(t), 2*time.Minute)
	defer cancel()
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(base+"/runs/"+ns+"/"+name))).To(Succeed())
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("a.artifact")].find(a => a.textContent === `+strconv.Quote(path)+`)?.href ?? ""`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(href).To(HavePrefix(base+"/runs/"+ns+"/"+name+"/artifacts/"), "the run page links the artifact")
	digest, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(`+strconv.Quote(href)+`).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest("SHA-256", b))
		.then(b => Array.from(new Uint8Array(b)).map(x => x.toString(16).padStart(2, "0")).join(""))`, chromedp.EvalAwaitPromise))
	g.Expect(err).NotTo(HaveOccurred())
	sum := sha256.Sum256(want)
	g.Expect(digest).To(Equal(hex.EncodeToString(sum[:])), "the link downloads the artifact byte for byte")
	screenshot(t, ctx, "artifacts.png")
	t.Logf("Chromium downloads %s of the deleted run from its page's link: sha256 %s", path, digest[:12])
}
