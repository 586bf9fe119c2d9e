package update

import "strings"

// KeyID is the key_id a plugin configured with publicKey sends (the
// plugin's CryptoCipher.calcKeyId): the key with all whitespace and the
// PKCS#1 PEM armour removed, cut to its first 20 characters.
func KeyID(publicKey string) string {
	k := strings.Join(strings.Fields(publicKey), "")
	k = strings.ReplaceAll(k, "-----BEGINRSAPUBLICKEY-----", "")
	k = strings.ReplaceAll(k, "-----ENDRSAPUBLICKEY-----", "")
	if len(k) > 20 {
		k = k[:20]
	}
	return k
}
