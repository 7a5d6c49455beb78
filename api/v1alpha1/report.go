package v1alpha1

// CommitStatusReport says where a trigger's runs report their results.
type CommitStatusReport struct {
	// Provider is the forge's API: github, gitlab or gitea.
	// +required
	// +kubebuilder:validation:Enum=github;gitlab;gitea
	Provider string `json:"provider"`
	// URL is the forge's API base: https://api.github.com, https://gitlab.example,
	// https://gitea.example. The token is never sent anywhere else (no redirects), and
	// over http:// only to a network the operator allows by name
	// (--git-allowed-networks), since it would travel in clear text.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/@?#]+(/[!-~]*)?$') && !self.contains('?') && !self.contains('#')",message="url must be an http(s) URL without user info, query or fragment"
	URL string `json:"url"`
	// SecretRef names a Secret in the trigger's namespace whose key `token` is the
	// forge's API token. Whoever creates or changes the trigger must be allowed to get it.
	// +required
	SecretRef SecretReference `json:"secretRef"`
	// Context is the status's name on the commit; {pipeline} is the pipeline file's
	// name (the trigger's name when a run fails before it is read), {trigger} the
	// trigger's, {schedule} the schedule's ("push" for runs of a new head).
	// +optional
	// +kubebuilder:default="flow-ci/{pipeline}"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Context string `json:"context,omitempty"`
	// TargetURL is the status's link, with {namespace} and {name} (the run's) filled
	// in, e.g. a web view of the run.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/@?#]+')",message="targetURL must be an http(s) URL without user info"
	TargetURL string `json:"targetURL,omitempty"`
}
