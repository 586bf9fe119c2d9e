package android.content.res;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;

// The APK's assets: a directory the driver fills with the builtin bundle.
public class AssetManager {

    private final File dir;

    public AssetManager(File dir) {
        this.dir = dir;
    }

    public InputStream open(String path) throws IOException {
        return new FileInputStream(new File(dir, path));
    }

    public String[] list(String path) throws IOException {
        String[] names = new File(dir, path).list();
        return names == null ? new String[0] : names;
    }
}
