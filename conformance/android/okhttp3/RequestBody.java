package okhttp3;

import java.io.File;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import okio.BufferedSink;
import okio.ByteString;
import okio.Okio;
import okio.Source;

// Debian ships OkHttp 3.13; the plugin is written for OkHttp 4, whose
// RequestBody.create takes (content, mediaType) instead of 3.x's
// (mediaType, content). This class takes the place of 3.13's RequestBody on
// the class path: the 3.13 API unchanged, plus 4.x's argument order, so the
// plugin's source compiles and runs as shipped.
public abstract class RequestBody {

    public abstract MediaType contentType();

    public long contentLength() throws IOException {
        return -1;
    }

    public abstract void writeTo(BufferedSink sink) throws IOException;

    public static RequestBody create(MediaType contentType, String content) {
        Charset charset = StandardCharsets.UTF_8;
        if (contentType != null) {
            charset = contentType.charset();
            if (charset == null) {
                charset = StandardCharsets.UTF_8;
                contentType = MediaType.parse(contentType + "; charset=utf-8");
            }
        }
        byte[] bytes = content.getBytes(charset);
        return create(contentType, bytes);
    }

    public static RequestBody create(final MediaType contentType, final ByteString content) {
        return new RequestBody() {
            @Override
            public MediaType contentType() {
                return contentType;
            }

            @Override
            public long contentLength() {
                return content.size();
            }

            @Override
            public void writeTo(BufferedSink sink) throws IOException {
                sink.write(content);
            }
        };
    }

    public static RequestBody create(final MediaType contentType, final byte[] content) {
        return create(contentType, content, 0, content.length);
    }

    public static RequestBody create(final MediaType contentType, final byte[] content, final int offset, final int byteCount) {
        if (content == null) throw new NullPointerException("content == null");
        if ((offset | byteCount) < 0 || offset > content.length || content.length - offset < byteCount) {
            throw new ArrayIndexOutOfBoundsException();
        }
        return new RequestBody() {
            @Override
            public MediaType contentType() {
                return contentType;
            }

            @Override
            public long contentLength() {
                return byteCount;
            }

            @Override
            public void writeTo(BufferedSink sink) throws IOException {
                sink.write(content, offset, byteCount);
            }
        };
    }

    public static RequestBody create(final MediaType contentType, final File file) {
        if (file == null) throw new NullPointerException("file == null");
        return new RequestBody() {
            @Override
            public MediaType contentType() {
                return contentType;
            }

            @Override
            public long contentLength() {
                return file.length();
            }

            @Override
            public void writeTo(BufferedSink sink) throws IOException {
                try (Source source = Okio.source(file)) {
                    sink.writeAll(source);
                }
            }
        };
    }

    // OkHttp 4 order.
    public static RequestBody create(String content, MediaType contentType) {
        return create(contentType, content);
    }

    public static RequestBody create(ByteString content, MediaType contentType) {
        return create(contentType, content);
    }

    public static RequestBody create(byte[] content, MediaType contentType) {
        return create(contentType, content);
    }

    public static RequestBody create(File file, MediaType contentType) {
        return create(contentType, file);
    }
}
