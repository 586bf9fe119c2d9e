package com.google.android.play.core.appupdate;

import android.app.Activity;
import com.google.android.gms.tasks.Task;
import com.google.android.play.core.install.InstallStateUpdatedListener;

public interface AppUpdateManager {
    Task<AppUpdateInfo> getAppUpdateInfo();

    boolean startUpdateFlowForResult(AppUpdateInfo info, Activity activity, AppUpdateOptions options, int requestCode);

    Task<Void> completeUpdate();

    void registerListener(InstallStateUpdatedListener listener);

    void unregisterListener(InstallStateUpdatedListener listener);
}
