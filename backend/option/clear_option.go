package option

// ClrOptFnc configures one Clear call.
type ClrOptFnc func(*ClearConfig)

// ClearConfig is what the Clear options produce.
type ClearConfig struct {
	// PublishInvalidation makes every other node clear its cache too.
	PublishInvalidation bool
}

// WithClearInvalidation makes every other node clear its cache too.
func WithClearInvalidation() ClrOptFnc {
	return func(cfg *ClearConfig) {
		cfg.PublishInvalidation = true
	}
}

// ApplyClearOptions folds options into a ClearConfig. Nil options are skipped.
func ApplyClearOptions(options []ClrOptFnc) ClearConfig {
	var cfg ClearConfig
	for _, opt := range options {
		if opt != nil {
			opt(&cfg)
		}
	}
	return cfg
}
