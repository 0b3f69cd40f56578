package events

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// For a payload type without decodeJSON, Unmarshal uses encoding/json, after
// checkMembers has enforced the two rules the fast decoders add: member
// names that match a struct field exactly (not only ignoring case), and no
// name twice in one object.

var structFieldsCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields returns the JSON member names of struct type t and their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := structFieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && tag == "" && ft.Kind() == reflect.Struct {
			for name, typ := range jsonFields(ft) { // promoted fields
				if _, ok := fields[name]; !ok {
					fields[name] = typ
				}
			}
			continue
		}
		name, _, _ := bytes.Cut([]byte(tag), []byte(","))
		if len(name) == 0 {
			name = []byte(f.Name)
		}
		fields[string(name)] = f.Type
	}
	m, _ := structFieldsCache.LoadOrStore(t, fields)
	return m.(map[string]reflect.Type)
}

// decodesItself reports whether t's JSON is read by its own unmarshaler, so
// that its member names are its own business.
func decodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// checkMembers checks that raw (valid JSON) has no member name twice in one
// object and that the objects that decode into structs of type t name
// their fields exactly.
func checkMembers(raw []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	return checkMembersOf(dec, t, 0)
}

// checkMembersOf checks the next value of dec, to be decoded into type t
// (nil when any names go).
func checkMembersOf(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > 10000 {
		return errors.New("exceeded max depth")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && decodesItself(t) {
		t = nil
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := tok.(string)
			if seen[k] {
				return fmt.Errorf("duplicate field %q", k)
			}
			seen[k] = true
			sub := elem
			if fields != nil {
				ft, ok := fields[k]
				if !ok {
					return fmt.Errorf("unknown field %q", k)
				}
				sub = ft
			}
			if err := checkMembersOf(dec, sub, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkMembersOf(dec, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}
