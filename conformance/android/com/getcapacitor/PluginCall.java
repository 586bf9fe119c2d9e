package com.getcapacitor;

// One call from the app's JS: its arguments, and what the plugin resolved
// or rejected, handed to the MessageHandler (null: nobody listens).
public class PluginCall {

    public static final String CALLBACK_ID_DANGLING = "-1";

    private final MessageHandler msgHandler;
    private final String pluginId;
    private final String callbackId;
    private final String methodName;
    private final JSObject data;
    private boolean keepAlive = false;

    public PluginCall(MessageHandler msgHandler, String pluginId, String callbackId, String methodName, JSObject data) {
        this.msgHandler = msgHandler;
        this.pluginId = pluginId;
        this.callbackId = callbackId;
        this.methodName = methodName;
        this.data = data == null ? new JSObject() : data;
    }

    public String getMethodName() {
        return methodName;
    }

    public String getCallbackId() {
        return callbackId;
    }

    public JSObject getData() {
        return data;
    }

    public String getString(String name) {
        return getString(name, null);
    }

    public String getString(String name, String defaultValue) {
        Object v = data.opt(name);
        return v instanceof String ? (String) v : defaultValue;
    }

    public Boolean getBoolean(String name) {
        return getBoolean(name, null);
    }

    public Boolean getBoolean(String name, Boolean defaultValue) {
        Object v = data.opt(name);
        return v instanceof Boolean ? (Boolean) v : defaultValue;
    }

    public Integer getInt(String name) {
        return getInt(name, null);
    }

    public Integer getInt(String name, Integer defaultValue) {
        Object v = data.opt(name);
        return v instanceof Integer ? (Integer) v : defaultValue;
    }

    public JSObject getObject(String name) {
        return getObject(name, null);
    }

    public JSObject getObject(String name, JSObject defaultValue) {
        Object v = data.opt(name);
        try {
            return v instanceof org.json.JSONObject ? JSObject.fromJSONObject((org.json.JSONObject) v) : defaultValue;
        } catch (org.json.JSONException e) {
            return defaultValue;
        }
    }

    public void setKeepAlive(Boolean keepAlive) {
        this.keepAlive = Boolean.TRUE.equals(keepAlive);
    }

    public boolean isKeptAlive() {
        return keepAlive;
    }

    public void successCallback(PluginResult successResult) {
        if (msgHandler != null) msgHandler.resolve(this, successResult.getData());
    }

    public void resolve(JSObject data) {
        successCallback(new PluginResult(data));
    }

    public void resolve() {
        successCallback(new PluginResult(null));
    }

    public void errorCallback(String msg) {
        reject(msg, null, null, null);
    }

    public void reject(String msg, String code, Exception ex, JSObject data) {
        if (msgHandler != null) msgHandler.reject(this, msg, code, ex, data);
    }

    public void reject(String msg, Exception ex, JSObject data) {
        reject(msg, null, ex, data);
    }

    public void reject(String msg, String code, JSObject data) {
        reject(msg, code, null, data);
    }

    public void reject(String msg, String code, Exception ex) {
        reject(msg, code, ex, null);
    }

    public void reject(String msg, JSObject data) {
        reject(msg, null, null, data);
    }

    public void reject(String msg, Exception ex) {
        reject(msg, null, ex, null);
    }

    public void reject(String msg, String code) {
        reject(msg, code, null, null);
    }

    public void reject(String msg) {
        reject(msg, null, null, null);
    }
}
