// Package config loads hashpool's TOML configuration files and sets up logging.
//
// Every component keeps its own Options struct (with `toml` tags, defaults filled in one place
// and a Validate method); this package only decodes a file strictly into such a struct (unknown
// keys are errors, so a typo never silently falls back to a default) and builds the *slog.Logger
// the commands hand to the components. It must never hold component-specific knowledge.
package config
