package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/token"
)

// errConfig marks a configuration the receiver refuses to start with.
var errConfig = errors.New("invalid configuration")

// errConfigSyntax marks a config file the YAML parser cannot read.
var errConfigSyntax = errors.New("not valid YAML")

// problem is one thing wrong with the configuration, as an error of one
// line: "setting: what is wrong (example)". It matches errConfig and its
// cause; several are joined with errors.Join, one line each.
type problem struct {
	setting string // how the user spelled the setting: "--key", "GRAPHHOOK_KEY", ...
	msg     string // what is wrong and an example of right; never a secret
	err     error  // the cause, for errors.Is; may be nil
}

func (p *problem) Error() string { return p.setting + ": " + p.msg }

// Unwrap returns errConfig and the cause.
func (p *problem) Unwrap() []error {
	if p.err == nil {
		return []error{errConfig}
	}
	return []error{errConfig, p.err}
}

// problems collects configuration problems.
type problems []error

func (ps *problems) add(setting string, err error, msg string) {
	*ps = append(*ps, &problem{setting: setting, msg: msg, err: err})
}

// err returns nil or ps joined, one line each.
func (ps problems) err() error { return errors.Join(ps...) }

// settingOfField returns the setting whose lib tag names a library's
// Config field ("natspub.Stream"), or "".
func settingOfField(field string) string {
	for _, s := range settings() {
		if s.lib == field {
			return s.name
		}
	}
	return ""
}

// addLibrary adds err, what package pkg's Config.Validate returned, as a
// problem of the setting that sets the field it names. The libraries keep
// the rules; the daemon only maps their fields to its settings.
func (ps *problems) addLibrary(c *config, pkg string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok { // token reports every field
		for _, e := range joined.Unwrap() {
			ps.addLibrary(c, pkg, e)
		}
		return
	}
	field, msg := "", err.Error()
	if e, ok := errors.AsType[*natspub.ConfigError](err); ok {
		field, msg = e.Field, e.Err.Error()
	} else if e, ok := errors.AsType[*receiver.ConfigError](err); ok {
		field, msg = e.Field, e.Err.Error()
	} else if e, ok := errors.AsType[*token.ConfigError](err); ok {
		field, msg = e.Field, e.Err.Error()
	}
	field, _, _ = strings.Cut(field, "[")
	name := settingOfField(pkg + "." + field)
	if name == "" {
		ps.add("settings", err, msg+" (run with -h for the list of settings)")
		return
	}
	ps.add(c.where(name), err, fmt.Sprintf("%s (example: %s)", msg, settingByName(name).exampleArg()))
}
