package yamlpos

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Unmarshal decodes data into v as yaml.UnmarshalWithOptions does, but a
// panic inside the decoder comes back as an error. go-yaml v1.19.2
// dereferences nil on some inputs — a tag on a mapping where a list is
// expected (listeners: !x {a: 1}) — and a bad file must get an error
// that says where, not crash the command that read it. The error is a
// yaml.Error, so Explain places it like any other.
func Unmarshal(data []byte, v any, opts ...yaml.DecodeOption) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = decoderFailure(data, r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, v, opts...)
}

// DecoderError is a decoder panic turned into an error. Token is the first
// explicit tag in the file when it has one — every such panic seen so far
// was caused by a tag — and otherwise the file's first token.
type DecoderError struct {
	Token  *token.Token
	Tagged bool
	Cause  any // what the decoder panicked with
}

func (e *DecoderError) Error() string {
	if e.Token != nil && e.Token.Position != nil {
		return fmt.Sprintf("[%d:%d] %s", e.Token.Position.Line, e.Token.Position.Column, e.GetMessage())
	}
	return e.GetMessage()
}

// GetToken, GetMessage and FormatError make a DecoderError a yaml.Error.
func (e *DecoderError) GetToken() *token.Token { return e.Token }

func (e *DecoderError) GetMessage() string {
	if e.Tagged {
		return fmt.Sprintf("the value tagged %s cannot be read here; remove the tag (the YAML decoder failed on it)", e.Token.Value)
	}
	return fmt.Sprintf("the YAML decoder failed on this file: %v", e.Cause)
}

func (e *DecoderError) FormatError(bool, bool) string { return e.Error() }

var _ yaml.Error = (*DecoderError)(nil)

func decoderFailure(data []byte, cause any) (err error) {
	out := &DecoderError{Cause: cause}
	defer func() {
		if recover() != nil { // the parser failed too: report without a place
			err = out
		}
	}()
	f, perr := parser.ParseBytes(data, 0)
	if perr != nil || f == nil {
		return out
	}
	for _, d := range f.Docs {
		if d.Body == nil {
			continue
		}
		if tags := ast.Filter(ast.TagType, d.Body); len(tags) > 0 {
			out.Token, out.Tagged = tags[0].GetToken(), true
			return out
		}
		if out.Token == nil {
			out.Token = d.Body.GetToken()
		}
	}
	return out
}
