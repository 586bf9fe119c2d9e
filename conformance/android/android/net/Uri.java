package android.net;

import java.net.URI;
import java.net.URISyntaxException;

// android.net.Uri over java.net.URI, for the parts the plugin reads and builds.
public final class Uri {

    private final URI uri;

    private Uri(URI uri) {
        this.uri = uri;
    }

    public static Uri parse(String s) {
        try {
            return new Uri(new URI(s));
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(e);
        }
    }

    public String getScheme() {
        return uri.getScheme();
    }

    public String getHost() {
        return uri.getHost();
    }

    public int getPort() {
        return uri.getPort();
    }

    public String getPath() {
        return uri.getPath();
    }

    public String getQuery() {
        return uri.getQuery();
    }

    public String getQueryParameter(String key) {
        String q = uri.getRawQuery();
        if (q == null) return null;
        for (String kv : q.split("&")) {
            int i = kv.indexOf('=');
            String k = java.net.URLDecoder.decode(i < 0 ? kv : kv.substring(0, i), java.nio.charset.StandardCharsets.UTF_8);
            if (k.equals(key)) {
                return i < 0 ? "" : java.net.URLDecoder.decode(kv.substring(i + 1), java.nio.charset.StandardCharsets.UTF_8);
            }
        }
        return null;
    }

    public Builder buildUpon() {
        Builder b = new Builder();
        b.scheme = uri.getScheme();
        b.authority = uri.getRawAuthority();
        b.path = uri.getRawPath();
        b.query = uri.getRawQuery();
        b.fragment = uri.getRawFragment();
        return b;
    }

    @Override
    public String toString() {
        return uri.toString();
    }

    public static final class Builder {

        String scheme, authority, path, query, fragment;

        public Builder scheme(String s) {
            scheme = s;
            return this;
        }

        public Builder authority(String a) {
            authority = a;
            return this;
        }

        public Builder path(String p) {
            path = p;
            return this;
        }

        public Builder fragment(String f) {
            fragment = f;
            return this;
        }

        public Builder clearQuery() {
            query = null;
            return this;
        }

        public Uri build() {
            StringBuilder sb = new StringBuilder();
            if (scheme != null) sb.append(scheme).append(':');
            if (authority != null) sb.append("//").append(authority);
            if (path != null) sb.append(path);
            if (query != null) sb.append('?').append(query);
            if (fragment != null) sb.append('#').append(fragment);
            return Uri.parse(sb.toString());
        }
    }
}
