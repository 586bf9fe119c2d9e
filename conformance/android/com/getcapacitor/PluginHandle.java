package com.getcapacitor;

// Another plugin of the app (none are installed here: Bridge.getPlugin is null).
public class PluginHandle {

    public void invoke(String methodName, PluginCall call) {
        throw new UnsupportedOperationException("no other Capacitor plugin on this device");
    }
}
