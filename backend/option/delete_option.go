package option

// DelOptFnc configures one Delete call.
type DelOptFnc func(*DeleteConfig)

// DeleteConfig is what the Delete options produce.
type DeleteConfig struct {
	// PublishInvalidation broadcasts the delete to every other node.
	PublishInvalidation bool
}

// WithDeleteInvalidation broadcasts the delete to every other node.
func WithDeleteInvalidation() DelOptFnc {
	return func(cfg *DeleteConfig) {
		cfg.PublishInvalidation = true
	}
}

// ApplyDeleteOptions folds options into a DeleteConfig. Nil options are skipped.
func ApplyDeleteOptions(options []DelOptFnc) DeleteConfig {
	var cfg DeleteConfig
	for _, opt := range options {
		if opt != nil {
			opt(&cfg)
		}
	}
	return cfg
}
