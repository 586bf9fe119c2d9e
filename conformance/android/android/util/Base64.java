package android.util;

import java.nio.charset.StandardCharsets;

// android.util.Base64 over java.util.Base64; DEFAULT decoding skips line
// breaks as Android's does (the MIME decoder), encoding adds none (NO_WRAP-like
// output is what the plugin compares against).
public final class Base64 {

    public static final int DEFAULT = 0;
    public static final int NO_PADDING = 1;
    public static final int NO_WRAP = 2;
    public static final int URL_SAFE = 8;

    public static byte[] decode(String str, int flags) {
        return decode(str.getBytes(StandardCharsets.US_ASCII), flags);
    }

    public static byte[] decode(byte[] input, int flags) {
        if ((flags & URL_SAFE) != 0) {
            return java.util.Base64.getUrlDecoder().decode(new String(input, StandardCharsets.US_ASCII).replaceAll("\\s", ""));
        }
        return java.util.Base64.getMimeDecoder().decode(input);
    }

    public static String encodeToString(byte[] input, int flags) {
        java.util.Base64.Encoder enc = (flags & URL_SAFE) != 0 ? java.util.Base64.getUrlEncoder() : java.util.Base64.getEncoder();
        if ((flags & NO_PADDING) != 0) enc = enc.withoutPadding();
        return enc.encodeToString(input);
    }

    public static byte[] encode(byte[] input, int flags) {
        return encodeToString(input, flags).getBytes(StandardCharsets.US_ASCII);
    }
}
