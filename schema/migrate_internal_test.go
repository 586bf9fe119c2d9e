package schema

import "testing"

func TestColumnAlreadyAdded(t *testing.T) {
	for _, tt := range []struct {
		stmt string
		code int
		want bool
	}{
		{"ALTER TABLE `db`.capstan_events ADD COLUMN ignored UInt8 DEFAULT 0", codeIllegalColumn, true},
		{"ALTER TABLE `db`.capstan_events ADD COLUMN ignored UInt8 DEFAULT 0", codeDuplicateColumn, true},
		{"ALTER TABLE `db`.capstan_events ADD COLUMN ignored UInt8 DEFAULT 0", 62, false},
		{"ALTER TABLE `db`.capstan_events ADD COLUMN IF NOT EXISTS ignored UInt8", codeDuplicateColumn, false},
		{"CREATE TABLE x (a UInt8)", codeDuplicateColumn, false},
	} {
		if got := columnAlreadyAdded(tt.stmt, tt.code); got != tt.want {
			t.Errorf("columnAlreadyAdded(%q, %d) = %v", tt.stmt, tt.code, got)
		}
	}
}
