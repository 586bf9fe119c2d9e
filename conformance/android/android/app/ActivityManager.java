package android.app;

import android.content.ComponentName;
import android.content.Intent;
import java.util.Collections;
import java.util.List;

// A freshly installed app: no earlier process exits and no task list.
public class ActivityManager {

    public List<ApplicationExitInfo> getHistoricalProcessExitReasons(String packageName, int pid, int maxNum) {
        return Collections.emptyList();
    }

    public List<AppTask> getAppTasks() {
        return Collections.emptyList();
    }

    public static class AppTask {

        public RecentTaskInfo getTaskInfo() {
            return null;
        }
    }

    public static class RecentTaskInfo {

        public Intent baseIntent;
        public ComponentName topActivity;
    }
}
