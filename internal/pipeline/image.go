package pipeline

import (
	"strings"

	"github.com/distribution/reference"
)

// maxImageRefLen bounds the whole reference, tag and digest included.
const maxImageRefLen = 255

// checkImageRef returns why ref is not a well-formed image reference, or "" if it is,
// with the grammar containerd and the kubelet parse with (distribution/reference): a
// bad reference would otherwise only surface as ImagePullBackOff long after the run
// started.
func checkImageRef(ref string) string {
	if len(ref) > maxImageRefLen {
		return "longer than 255 characters"
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return strings.TrimPrefix(err.Error(), "invalid reference format: ")
	}
	return ""
}
