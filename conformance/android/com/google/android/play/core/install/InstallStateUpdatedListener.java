package com.google.android.play.core.install;

public interface InstallStateUpdatedListener {
    void onStateUpdate(InstallState state);
}
