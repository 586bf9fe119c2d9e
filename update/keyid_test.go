package update

import "testing"

func TestKeyID(t *testing.T) {
	pem := "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAx1y2z3abcdefghij\nklmnop\n-----END RSA PUBLIC KEY-----\n"
	for in, want := range map[string]string{
		pem:                           "MIIBCgKCAQEAx1y2z3ab",
		"MIIBCgKCAQEA\tshort":         "MIIBCgKCAQEAshort",
		"":                            "",
		"   ":                         "",
		"-----BEGIN PUBLIC KEY-----x": "-----BEGINPUBLICKEY-", // as the plugin does: only PKCS#1 armour is removed
	} {
		if got := KeyID(in); got != want {
			t.Errorf("KeyID(%q) = %q, want %q", in, got, want)
		}
	}
}
