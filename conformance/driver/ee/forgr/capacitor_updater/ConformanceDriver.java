package ee.forgr.capacitor_updater;

import android.app.Activity;
import android.content.SharedPreferences;
import android.content.pm.PackageInfo;
import androidx.lifecycle.LifecycleOwner;
import androidx.lifecycle.ProcessLifecycleOwner;
import com.getcapacitor.Bridge;
import com.getcapacitor.BridgeActivity;
import com.getcapacitor.CapConfig;
import com.getcapacitor.JSObject;
import com.getcapacitor.MessageHandler;
import com.getcapacitor.PluginCall;
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
 * The host app: it loads CapacitorUpdaterPlugin on a bridge with the app's
 * capacitor.config.json, calls its methods as the app's JS would, and reads
 * its CapgoUpdater for state. One JSON command per stdin line; each answers
 * one {"reply":n,...} line. What the plugin does meanwhile (HTTP exchanges,
 * listener events, sent stats) is printed as {"event":...} lines. In package
 * ee.forgr.capacitor_updater to reach the package-private parts the plugin's
 * own unit tests use.
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

    static final class DeviceActivity extends BridgeActivity implements LifecycleOwner {

        DeviceActivity(File root) {
            super(root);
        }
    }

    static final String PLUGIN_ID = "CapacitorUpdater";

    private DeviceActivity activity;
    private SharedPreferences prefs;
    private SharedPreferences.Editor editor;
    private CapacitorUpdaterPlugin plugin;
    private CapgoUpdater updater;
    // Every event the plugin notified, in order.
    private final List<JSONObject> notified = new ArrayList<>();
    private final List<JSONObject> updateAnswers = new ArrayList<>();

    private static volatile ConformanceDriver CURRENT;

    private void recordUpdateAnswer(String body) {
        synchronized (updateAnswers) {
            try {
                updateAnswers.add(new JSONObject(body));
            } catch (Exception e) {
                updateAnswers.add(new JSONObject());
            }
        }
    }

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
        if (req.url().encodedPath().endsWith("/updates") && respBody != null && CURRENT != null) {
            CURRENT.recordUpdateAnswer(respBody);
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
        if (v instanceof JSONObject) {
            JSONObject o = new JSONObject();
            JSONArray names = ((JSONObject) v).names();
            for (int i = 0; names != null && i < names.length(); i++) {
                String k = names.optString(i);
                try {
                    o.put(k, json(((JSONObject) v).opt(k)));
                } catch (Exception ex) {
                    throw new RuntimeException(ex);
                }
            }
            return o;
        }
        if (v instanceof JSONArray) {
            JSONArray a = new JSONArray();
            for (int i = 0; i < ((JSONArray) v).length(); i++) a.put(json(((JSONArray) v).opt(i)));
            return a;
        }
        if (v instanceof BundleInfo) {
            return json(((BundleInfo) v).toJSONMap());
        }
        return v;
    }

    // The app starts: the bridge loads the plugin with capacitor.config.json
    // (CapacitorUpdaterPlugin.load(), CapacitorUpdaterPlugin.java:683), then
    // the app's JS calls notifyAppReady(). The phone keeps its device id
    // where the plugin's DeviceIdHelper restores it from (appUUID).
    private Object init(JSONObject c) throws Exception {
        File root = new File(c.getString("root"));
        activity = new DeviceActivity(root);
        PackageInfo app = new PackageInfo();
        app.packageName = c.getString("appId");
        app.versionName = c.getString("versionBuild");
        app.longVersionCode = Long.parseLong(c.optString("versionCode", "1"));
        activity.setInstalledPackage(app);
        prefs = activity.getSharedPreferences(com.getcapacitor.plugin.WebView.WEBVIEW_PREFS_NAME, Activity.MODE_PRIVATE);
        editor = prefs.edit();
        editor.putString("appUUID", c.getString("deviceId")).commit();

        JSONObject pluginConfig = new JSONObject();
        pluginConfig.put("appId", c.getString("appId"));
        pluginConfig.put("updateUrl", c.getString("updateUrl"));
        pluginConfig.put("statsUrl", c.optString("statsUrl", ""));
        pluginConfig.put("channelUrl", c.optString("channelUrl", ""));
        pluginConfig.put("defaultChannel", c.optString("defaultChannel", ""));
        pluginConfig.put("publicKey", c.optString("publicKey", ""));
        pluginConfig.put("responseTimeout", c.optInt("timeoutMs", 20000) / 1000);
        JSONObject plugins = new JSONObject();
        plugins.put(PLUGIN_ID, pluginConfig);
        JSONObject capConfig = new JSONObject();
        capConfig.put("appId", c.getString("appId"));
        capConfig.put("plugins", plugins);
        CapConfig config = new CapConfig(capConfig);
        CapConfig.setDefault(config);

        CURRENT = this;
        synchronized (ConformanceDriver.class) {
            DownloadService.sharedClient = DownloadService.sharedClient.newBuilder().addInterceptor(RECORDER).build();
        }
        Bridge bridge = new Bridge(activity, config, (pluginId, name, data, retain) -> {
            JSONObject e = new JSONObject();
            try {
                e.put("name", name);
                e.put("data", json(data));
            } catch (Exception ex) {
                throw new RuntimeException(ex);
            }
            synchronized (notified) {
                notified.add(e);
            }
            event("notify", "name", name, "data", e.opt("data"));
        });
        plugin = new CapacitorUpdaterPlugin();
        plugin.setBridge(bridge);
        plugin.setPluginId(PLUGIN_ID);
        plugin.load();
        updater = plugin.implementation;
        if (updater == null || updater.deviceID == null) {
            throw new IllegalStateException("CapacitorUpdaterPlugin.load() did not finish");
        }
        // A device running an older plugin: its version is a plain field
        // (CapacitorUpdaterPlugin.java:149, set at :728).
        if (c.has("pluginVersion")) {
            updater.pluginVersion = c.getString("pluginVersion");
            DownloadService.updateUserAgent(updater.appId, updater.pluginVersion, updater.versionOs);
        }
        if (c.optBoolean("notifyAppReady", true)) {
            callPlugin("notifyAppReady", new JSObject(), 5000);
        }
        JSONObject r = new JSONObject();
        r.put("key_id", updater.getKeyId());
        r.put("device_id", updater.deviceID);
        return r;
    }

    // The arguments of a plugin call: the command's keys given.
    private static JSObject args(JSONObject c, String... keys) throws Exception {
        JSObject a = new JSObject();
        for (String k : keys) {
            if (c.has(k) && !c.isNull(k)) a.put(k, c.get(k));
        }
        return a;
    }

    static final class Rejected extends Exception {

        final JSONObject answer = new JSONObject();

        Rejected(String method, String msg, String code, JSObject data) throws Exception {
            super(method + " rejected: " + msg + (code == null ? "" : " (" + code + ")"));
            answer.put("rejected", msg);
            if (code != null) answer.put("code", code);
            JSONArray names = data == null ? null : data.names();
            for (int i = 0; names != null && i < names.length(); i++) {
                answer.put(names.getString(i), data.get(names.getString(i)));
            }
        }
    }

    // Calls one of the plugin's @PluginMethod methods as the app's JS does and
    // waits for it to resolve; a rejection throws Rejected.
    private JSONObject callPlugin(String method, JSObject args, long timeoutMs) throws Exception {
        CompletableFuture<JSONObject> f = new CompletableFuture<>();
        MessageHandler handler = new MessageHandler() {
            public void resolve(PluginCall call, JSObject data) {
                f.complete(data == null ? new JSObject() : data);
            }

            public void reject(PluginCall call, String msg, String code, Exception ex, JSObject data) {
                try {
                    f.completeExceptionally(new Rejected(method, msg, code, data));
                } catch (Exception e) {
                    f.completeExceptionally(e);
                }
            }
        };
        PluginCall call = new PluginCall(handler, PLUGIN_ID, "1", method, args);
        CapacitorUpdaterPlugin.class.getMethod(method, PluginCall.class).invoke(plugin, call);
        try {
            return f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
            throw e;
        }
    }

    // A plugin call whose rejection is an answer too, as the app's JS sees
    // it: {"rejected": message, "code": ..., plus the rejection's data}.
    private Object jsCall(String method, JSObject args, long timeoutMs) throws Exception {
        try {
            return json(callPlugin(method, args, timeoutMs));
        } catch (Rejected r) {
            return r.answer;
        }
    }

    private JSONObject notifiedSince(int from, String name) {
        synchronized (notified) {
            for (int i = from; i < notified.size(); i++) {
                if (name.equals(notified.get(i).optString("name"))) return notified.get(i);
            }
        }
        return null;
    }

    // The plugin checks for an update, run by its own backgroundDownload()
    // (CapacitorUpdaterPlugin.java:4783), asked for one of two ways:
    // "triggerUpdateCheck", the app's JS calls triggerUpdateCheck (:4274);
    // "foreground", the app comes to the foreground, which the OS tells
    // ProcessLifecycleOwner, whose observer the plugin registered in load()
    // (:946, AppLifecycleObserver.onStart -> appMovedToForeground, :5240).
    // Answers once the check has played out:
    // the plugin ended it (appReady, sent by endBackGroundTaskWithNotif via
    // sendReadyToJs) or started a download (its first download event); if
    // neither comes within settleMs of the answer, the plugin did nothing
    // more. The reply lists the events the plugin notified meanwhile and the
    // update answer it got.
    private Object autoUpdate(JSONObject c) throws Exception {
        final long timeoutMs = c.optLong("timeoutMs", 20000);
        final long settleMs = c.optLong("settleMs", 3000);
        final int from;
        synchronized (notified) {
            from = notified.size();
        }
        final int answersFrom;
        synchronized (updateAnswers) {
            answersFrom = updateAnswers.size();
        }
        final String via = c.optString("via", "triggerUpdateCheck");
        JSONObject r = new JSONObject();
        boolean started;
        if ("foreground".equals(via)) {
            ProcessLifecycleOwner.moveToForeground();
            started = true;
        } else {
            JSONObject status = callPlugin("triggerUpdateCheck", new JSObject(), timeoutMs);
            r.put("status", status.optString("status"));
            started = status.optBoolean("queued");
        }
        if (started) {
            long deadline = System.currentTimeMillis() + timeoutMs;
            long answeredAt = 0;
            while (System.currentTimeMillis() < deadline) {
                if (notifiedSince(from, "appReady") != null || notifiedSince(from, "download") != null) break;
                synchronized (updateAnswers) {
                    if (answeredAt == 0 && updateAnswers.size() > answersFrom) answeredAt = System.currentTimeMillis();
                }
                if (answeredAt != 0 && System.currentTimeMillis() - answeredAt > settleMs) break;
                Thread.sleep(20);
            }
        }
        // Events the plugin handed to the UI thread before then are delivered first.
        java.util.concurrent.CountDownLatch drained = new java.util.concurrent.CountDownLatch(1);
        new android.os.Handler(android.os.Looper.getMainLooper()).post(drained::countDown);
        drained.await(5, TimeUnit.SECONDS);
        JSONArray events = new JSONArray();
        synchronized (notified) {
            for (int i = from; i < notified.size(); i++) events.put(notified.get(i));
        }
        r.put("events", events);
        synchronized (updateAnswers) {
            r.put("response", updateAnswers.size() > answersFrom ? updateAnswers.get(updateAnswers.size() - 1) : JSONObject.NULL);
        }
        return r;
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

    private Object handle(String op, JSONObject c) throws Exception {
        final long timeoutMs = c.optLong("timeoutMs", 20000);
        switch (op) {
            case "init":
                return init(c);
            case "getLatest":
                return jsCall("getLatest", args(c, "channel"), timeoutMs);
            case "autoUpdate":
                return autoUpdate(c);
            case "download":
            case "downloadManifest": {
                // The plugin's download() (CapacitorUpdaterPlugin.java:2865):
                // a zip, or the manifest's files when one is given.
                JSONObject b = callPlugin("download", args(c, "url", "version", "sessionKey", "checksum", "manifest"), timeoutMs);
                return bundleResult(updater.getBundleInfo(b.getString("id")));
            }
            case "files":
                return files(c.getString("id"));
            case "setChannel":
                return jsCall("setChannel", args(c, "channel", "triggerAutoUpdate"), timeoutMs);
            case "getChannel":
                return jsCall("getChannel", new JSObject(), timeoutMs);
            case "unsetChannel":
                return jsCall("unsetChannel", args(c, "triggerAutoUpdate"), timeoutMs);
            case "listChannels":
                return jsCall("listChannels", new JSObject(), timeoutMs);
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
                return updater.setNextBundle(c.isNull("id") ? null : c.optString("id", null));
            case "background":
                // The app's last activity stops (AppLifecycleObserver.onStop -> appMovedToBackground).
                ProcessLifecycleOwner.moveToBackground();
                return new JSONObject();
            case "notifyAppReady":
                return callPlugin("notifyAppReady", new JSObject(), timeoutMs);
            case "reset":
                updater.reset();
                return new JSONObject();
            case "bundleSize":
                return jsCall("getBundleDownloadSize", args(c, "version", "manifest"), timeoutMs);
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
