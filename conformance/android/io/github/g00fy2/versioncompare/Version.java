package io.github.g00fy2.versioncompare;

// The app's native version as given. Comparing versions (the nativeVersion
// delay condition) is the library's own logic and is not stood in: it throws.
public class Version {

    private final String original;

    public Version(String version) {
        this.original = version;
    }

    public String getOriginalString() {
        return original;
    }

    public boolean isAtLeast(Version other) {
        throw new UnsupportedOperationException("version comparison is not stood in");
    }

    @Override
    public String toString() {
        return original;
    }
}
