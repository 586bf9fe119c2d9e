package consumer

import (
	"reflect"
	"testing"

	"github.com/capstan-io/capstan/schema"
)

// The column-wise insert sends exactly what schema.EventValues gives
// row by row, for every column schema.EventColumns lists.
func TestColumnsMatchEventValues(t *testing.T) {
	var rows []*item
	for i := 0; i < 40; i++ {
		e := benchEvent(i)
		e.ReceivedMs += int64(i * 137) // sub-second parts to truncate
		switch i % 4 {
		case 0:
			e.Metadata = map[string]string{"b": "2", "a": "1", "é": "ü", "": ""}
		case 1:
			e.Metadata = map[string]string{}
		case 2:
			e.ClientMs = 0
		}
		e.FileName, e.CustomID, e.InstallSource, e.KeyID = "f", "c", "s", "k"
		e.IsEmulator = i%3 == 0
		e.IsProd = i%5 != 0
		e.Ignored = i%7 == 0
		if i%2 == 0 {
			e.ReportedVersion = "0.9.0"
		}
		rows = append(rows, &item{ev: e})
	}
	for _, flavor := range []schema.Flavor{schema.FlavorLegacy, schema.FlavorModern} {
		var c columns
		for round := 0; round < 2; round++ { // buffers reused
			c.metaPrepared = false
			for i, name := range schema.EventColumns(flavor) {
				got, err := c.column(name, rows, flavor)
				if err != nil {
					t.Fatalf("%s: %v", flavor, err)
				}
				g := reflect.ValueOf(got)
				if g.Len() != len(rows) {
					t.Fatalf("%s %s: %d values for %d rows", flavor, name, g.Len(), len(rows))
				}
				for r, it := range rows {
					want := schema.EventValues(it.ev, flavor)[i]
					have := g.Index(r).Interface()
					if !sameValue(have, want) {
						t.Errorf("%s %s row %d: column-wise %#v, EventValues %#v", flavor, name, r, have, want)
					}
				}
			}
			c.release()
		}
	}
}

// sameValue is reflect.DeepEqual, except that empty slices and maps
// equal nil ones (the driver sends both as empty).
func sameValue(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return false
	}
	if k := va.Kind(); (k == reflect.Slice || k == reflect.Map) && va.Len() == 0 && vb.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestColumnsUnknownColumn(t *testing.T) {
	var c columns
	if _, err := c.column("not_a_column", []*item{{ev: benchEvent(1)}}, schema.FlavorLegacy); err == nil {
		t.Fatal("no error for a column the appender does not know")
	}
}
