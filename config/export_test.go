package config

// ParseDuration exposes parseDuration to the external tests.
var ParseDuration = parseDuration
