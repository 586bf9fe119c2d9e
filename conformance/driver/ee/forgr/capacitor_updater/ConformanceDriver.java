package ee.forgr.capacitor_updater;

import android.app.Activity;
import android.content.SharedPreferences;
import androidx.lifecycle.LifecycleOwner;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.Response;
import okio.Buffer;
import org.json.JSONArray;
import org.json.JSONObject;

/**
 * Drives the plugin's own classes the way CapacitorUpdaterPlugin does, one
 * JSON command per stdin line. Each command answers one {"reply":n,...} line;
 * what the plugin does meanwhile (HTTP exchanges, listener events, sent stats)
 * is printed as {"event":...} lines. In package ee.forgr.capacitor_updater to
 * reach the package-private parts the plugin's own unit tests use.
 */
public final class ConformanceDriver {

    // CapacitorUpdaterPlugin.java:106
    static final String DEFAULT_CHANNEL_PREF_KEY = "CapacitorUpdater.defaultChannel";

    private static final PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);

    static synchronized void emit(JSONObject o) {
        out.println(o.toString());
    }

    static void event(String kind, Object... kv) {
        try {
            JSONObject o = new JSONObject();
            o.put("event", kind);
            o.put("at_ms", System.currentTimeMillis());
            for (int i = 0; i + 1 < kv.length; i += 2) {
                o.put((String) kv[i], kv[i + 1] == null ? JSONObject.NULL : kv[i + 1]);
            }
            emit(o);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    static final class DeviceActivity extends Activity implements LifecycleOwner {

        DeviceActivity(File root) {
            super(root);
        }
    }

    private DeviceActivity activity;
    private SharedPreferences prefs;
    private SharedPreferences.Editor editor;
    private CapgoUpdater updater;
    private String updateUrl;
    private String configDefaultChannel = "";

    // Records each exchange the plugin makes; the request and answer pass unchanged.
    static final Interceptor RECORDER = (chain) -> {
        Request req = chain.request();
        String body = null;
        if (req.body() != null) {
            Buffer b = new Buffer();
            req.body().writeTo(b);
            body = b.readUtf8();
        }
        long start = System.currentTimeMillis();
        Response resp;
        try {
            resp = chain.proceed(req);
        } catch (java.io.IOException e) {
            event("http", "method", req.method(), "url", req.url().toString(), "path", req.url().encodedPath(), "request", body, "error", e.toString());
            throw e;
        }
        MediaType ct = resp.body() != null ? resp.body().contentType() : null;
        String respBody = null;
        if (ct != null && "json".equals(ct.subtype())) {
            respBody = resp.peekBody(1 << 20).string();
        }
        event(
            "http",
            "method", req.method(),
            "url", req.url().toString(),
            "path", req.url().encodedPath(),
            "request", body,
            "status", resp.code(),
            "retry_after", resp.header("Retry-After"),
            "response", respBody,
            "start_ms", start
        );
        return resp;
    };

    private static Object json(Object v) {
        if (v == null) return JSONObject.NULL;
        if (v instanceof Map) {
            JSONObject o = new JSONObject();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                try {
                    o.put(String.valueOf(e.getKey()), json(e.getValue()));
                } catch (Exception ex) {
                    throw new RuntimeException(ex);
                }
            }
            return o;
        }
        if (v instanceof Collection) {
            JSONArray a = new JSONArray();
            for (Object x : (Collection<?>) v) a.put(json(x));
            return a;
        }
        if (v instanceof BundleInfo) {
            return json(((BundleInfo) v).toJSONMap());
        }
        return v;
    }

    private static String opt(JSONObject c, String k) {
        return c.isNull(k) ? null : c.optString(k, null);
    }

    // Mirrors CapacitorUpdaterPlugin.load() (CapacitorUpdaterPlugin.java:690-890)
    // for the fields CapgoUpdater reads.
    private Object init(JSONObject c) throws Exception {
        File root = new File(c.getString("root"));
        activity = new DeviceActivity(root);
        prefs = activity.getSharedPreferences("CapWebViewSettings", Activity.MODE_PRIVATE);
        editor = prefs.edit();
        Logger logger = new Logger("CapgoUpdater", new Logger.Options(Logger.LogLevel.debug));
        updater = new CapgoUpdater(logger) {
            @Override
            public void notifyDownload(final String id, final int percent) {
                event("download", "id", id, "percent", percent);
            }

            @Override
            public void directUpdateFinish(final BundleInfo latest) {
                event("notify", "name", "directUpdateFinish", "data", json(latest));
            }

            @Override
            public void notifyListeners(final String id, final Map<String, Object> res) {
                event("notify", "name", id, "data", json(res));
            }
        };
        updater.activity = activity;
        updater.versionBuild = c.getString("versionBuild");
        updater.CAP_SERVER_PATH = "serverBasePath"; // com.getcapacitor.plugin.WebView.CAP_SERVER_PATH
        // CapacitorUpdaterPlugin.java:149 and :728 — the plugin's version is a
        // plain field, so a device running an older plugin is one assignment.
        updater.pluginVersion = c.optString("pluginVersion", "8.51.23");
        updater.versionCode = c.optString("versionCode", "1");
        CryptoCipher.setLogger(logger);
        DownloadService.setLogger(logger);
        DownloadWorkerManager.setLogger(logger);
        updater.appId = c.getString("appId");
        updater.setPublicKey(c.optString("publicKey", ""));
        updateUrl = c.getString("updateUrl");
        updater.statsUrl = c.optString("statsUrl", "");
        updater.channelUrl = c.optString("channelUrl", "");
        configDefaultChannel = c.optString("defaultChannel", "");
        String stored = prefs.getString(DEFAULT_CHANNEL_PREF_KEY, "");
        updater.defaultChannel = stored != null && !stored.isEmpty() ? stored : configDefaultChannel;
        updater.documentsDir = activity.getFilesDir();
        updater.noBackupDir = activity.getNoBackupFilesDir();
        updater.prefs = prefs;
        updater.editor = editor;
        updater.versionOs = android.os.Build.VERSION.RELEASE;
        updater.deviceID = c.getString("deviceId");
        updater.restorePendingStats();
        DownloadService.updateUserAgent(updater.appId, updater.pluginVersion, updater.versionOs);
        updater.timeout = c.optInt("timeoutMs", 20000);
        DownloadService.applyHttpTimeouts(updater.timeout);
        synchronized (ConformanceDriver.class) {
            DownloadService.sharedClient = DownloadService.sharedClient.newBuilder().addInterceptor(RECORDER).build();
        }
        JSONObject r = new JSONObject();
        r.put("key_id", updater.getKeyId());
        return r;
    }

    private interface Call {
        void start(Callback cb);
    }

    private static Object await(Call call, long timeoutMs) throws Exception {
        CompletableFuture<Map<String, Object>> f = new CompletableFuture<>();
        call.start(f::complete);
        return json(f.get(timeoutMs, TimeUnit.MILLISECONDS));
    }

    private Object state() throws Exception {
        JSONObject r = new JSONObject();
        r.put("current", json(updater.getCurrentBundle()));
        BundleInfo next = updater.getNextBundle();
        r.put("next", next == null ? JSONObject.NULL : json(next));
        r.put("defaultChannel", updater.defaultChannel);
        r.put("stored_default_channel", prefs.getString(DEFAULT_CHANNEL_PREF_KEY, null) == null ? JSONObject.NULL : prefs.getString(DEFAULT_CHANNEL_PREF_KEY, null));
        r.put("pending_stats", updater.pendingStatsCount());
        r.put("bundles", json(updater.list(false)));
        r.put("bundle_infos", json(updater.list(true)));
        return r;
    }

    private static String sha256(File f) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        StringBuilder sb = new StringBuilder();
        for (byte b : md.digest(Files.readAllBytes(f.toPath()))) sb.append(String.format("%02x", b));
        return sb.toString();
    }

    private static void walk(File base, File f, JSONObject files) throws Exception {
        File[] kids = f.listFiles();
        if (kids == null) return;
        for (File k : kids) {
            if (k.isDirectory()) walk(base, k, files);
            else files.put(base.toPath().relativize(k.toPath()).toString(), sha256(k));
        }
    }

    // The files of a stored bundle with their SHA-256.
    private Object files(String id) throws Exception {
        JSONObject files = new JSONObject();
        walk(new File(updater.documentsDir, "versions/" + id), new File(updater.documentsDir, "versions/" + id), files);
        return files;
    }

    private Object bundleResult(BundleInfo b) throws Exception {
        JSONObject r = new JSONObject();
        r.put("bundle", json(b));
        r.put("files", files(b.getId()));
        return r;
    }

    // CapacitorUpdaterPlugin.backgroundDownload() (CapacitorUpdaterPlugin.java:4803-5090)
    // with autoUpdate on and no direct update: how the plugin acts on an
    // update answer. The branch taken is reported; every action is the
    // plugin's own CapgoUpdater call.
    private Object autoUpdate(JSONObject c) throws Exception {
        final long timeoutMs = c.optLong("timeoutMs", 20000);
        CompletableFuture<Map<String, Object>> f = new CompletableFuture<>();
        updater.getLatest(updateUrl, null, f::complete);
        Map<String, Object> res = f.get(timeoutMs, TimeUnit.MILLISECONDS);
        JSONObject jsRes = (JSONObject) json(res);
        JSONObject r = new JSONObject();
        r.put("response", jsRes);
        BundleInfo current = updater.getCurrentBundle();
        if (jsRes.has("error") || jsRes.has("kind")) {
            String kind = jsRes.optString("kind", null);
            // CapacitorUpdaterPlugin.normalizedUpdateResponseKind (:4631)
            if (!"up_to_date".equals(kind) && !"blocked".equals(kind) && !"failed".equals(kind)) kind = "failed";
            r.put("branch", kind);
            if ("failed".equals(kind)) {
                // endBackGroundTaskWithNotif(error=true) sends failureAction (:4735)
                updater.sendStats("download_fail", current.getVersionName());
            }
            return r;
        }
        String latest = jsRes.getString("version");
        if ("builtin".equals(latest)) {
            // :4864 shouldAutoSetNextBundle() -> setNextBundle(builtin) (:4884)
            r.put("branch", "set_next_builtin");
            updater.setNextBundle(BundleInfo.ID_BUILTIN);
            return r;
        }
        if (!jsRes.has("url")) {
            r.put("branch", "no_url");
            updater.sendStats("download_fail", current.getVersionName());
            return r;
        }
        if (latest.isEmpty() || current.getVersionName().equals(latest)) {
            r.put("branch", "no_need_update");
            return r;
        }
        r.put("branch", "download");
        String url = jsRes.getString("url");
        String sessionKey = jsRes.optString("sessionKey", "");
        String checksum = jsRes.optString("checksum", "");
        JSONArray manifest = jsRes.optJSONArray("manifest");
        updater.downloadBackground(url, latest, sessionKey, checksum, manifest, true);
        return r;
    }

    private Object handle(String op, JSONObject c) throws Exception {
        final long timeoutMs = c.optLong("timeoutMs", 20000);
        switch (op) {
            case "init":
                return init(c);
            case "getLatest":
                return await((cb) -> updater.getLatest(updateUrl, opt(c, "channel"), cb), timeoutMs);
            case "autoUpdate":
                return autoUpdate(c);
            case "download":
                return bundleResult(updater.download(c.getString("url"), c.getString("version"), opt(c, "sessionKey"), opt(c, "checksum")));
            case "downloadManifest":
                return bundleResult(
                    updater.downloadManifest(
                        c.getString("url"),
                        c.getString("version"),
                        opt(c, "sessionKey"),
                        opt(c, "checksum"),
                        c.getJSONArray("manifest")
                    )
                );
            case "files":
                return files(c.getString("id"));
            case "setChannel": {
                final String channel = c.getString("channel");
                return await((cb) -> updater.setChannel(channel, editor, DEFAULT_CHANNEL_PREF_KEY, true, configDefaultChannel, cb), timeoutMs);
            }
            case "getChannel":
                return await((cb) -> updater.getChannel(cb, editor, DEFAULT_CHANNEL_PREF_KEY), timeoutMs);
            case "unsetChannel":
                return await((cb) -> updater.unsetChannel(editor, DEFAULT_CHANNEL_PREF_KEY, configDefaultChannel, cb), timeoutMs);
            case "listChannels":
                return await(updater::listChannels, timeoutMs);
            case "sendStats": {
                final String action = c.getString("action");
                updater.sendStats(
                    action,
                    c.optString("versionName", updater.getCurrentBundle().getVersionName()),
                    c.optString("oldVersionName", ""),
                    null,
                    () -> event("stat_sent", "action", action)
                );
                return new JSONObject();
            }
            case "set":
                return updater.set(c.getString("id"));
            case "setNextBundle":
                return updater.setNextBundle(opt(c, "id"));
            case "reset":
                updater.reset();
                return new JSONObject();
            case "bundleSize":
                return updater.getBundleDownloadSize(updateUrl, c.getString("version"), c.getJSONArray("manifest"));
            case "state":
                return state();
            case "shutdown":
                updater.shutdown();
                return new JSONObject();
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    public static void main(String[] args) throws Exception {
        ConformanceDriver d = new ConformanceDriver();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.trim().isEmpty()) continue;
            JSONObject c = new JSONObject(line);
            JSONObject r = new JSONObject();
            r.put("reply", c.optInt("seq"));
            try {
                r.put("result", d.handle(c.getString("op"), c));
            } catch (Throwable t) {
                Throwable cause = t instanceof java.util.concurrent.ExecutionException && t.getCause() != null ? t.getCause() : t;
                r.put("exception", cause.toString());
            }
            emit(r);
        }
        // stdin closed: the test is done with this device.
        Runtime.getRuntime().halt(0);
    }
}
