"""Chinese for the scheme pages: the words their scripts show (templates/schemes/_texts.html), the run and
record states, and the page titles; registered with the portal's i18n when the section is loaded."""

from __future__ import annotations

from portal.i18n import register

ZH = {
    # designer status line and link editor
    "Loading sample records…": "正在加载样例记录…",
    "{n} sample records loaded": "已加载 {n} 条样例记录",
    "Could not load samples: {error}": "无法加载样例记录：{error}",
    "Preview: {ok} mapped, {errors} with errors": "预览：{ok} 条映射成功，{errors} 条出错",
    "The mapping has problems: {error}": "映射有问题：{error}",
    "Saved: mapping {name} version {version}": "已保存：映射 {name} 第 {version} 版",
    "Not saved: {error}": "未保存：{error}",
    "{target}: function {fn}": "{target}：函数 {fn}",
    "{target}: no function": "{target}：无函数",
    "value map of {n}": "值映射 {n} 项",
    "{target}: link removed": "{target}：已删除映射",
    "Run #{run} queued": "运行 #{run} 已排队",
    "Schedule on": "计划已启用",
    "Schedule off": "计划已停用",
    "Could not load the scheme: {error}": "无法加载方案：{error}",
    # a run's progress and its dead letters
    "read {n}": "已读取 {n}",
    "{n} pushed": "已推送 {n}",
    "{n} unchanged": "未变更 {n}",
    "{n} failed": "失败 {n}",
    "{n} awaiting the target": "等待目标应答 {n}",
    "{n} records/s": "{n} 条/秒",
    "Replay": "重放",
    "Select {key}": "选择 {key}",
    "Replay queued as run": "重放已排队，运行",
    # states, triggers and stages
    "queued": "排队中",
    "running": "运行中",
    "stopping": "正在停止",
    "succeeded": "成功",
    "partial": "部分失败",
    "failed": "失败",
    "stopped": "已停止",
    "success": "成功",
    "skipped": "未变更，已跳过",
    "awaiting the target": "等待目标应答",
    "scheduled": "已启用计划",
    "idle": "空闲",
    "manual": "手动",
    "schedule": "定时",
    "replay": "重放",
    "command line": "命令行",
    "mapping": "映射",
    "enrichment": "补充查询",
    "target": "目标",
    # pages of runs, records and dead letters
    "Previous page": "上一页",
    "Next page": "下一页",
    "No runs yet.": "还没有运行记录。",
    "Open dead letters": "未处理死信",
    "No open dead letters.": "没有未处理的死信。",
    "Replay all {n} open dead letters of this scheme?": "重放本方案全部 {n} 条未处理死信？",
    "Replay the {n} selected dead letters?": "重放选中的 {n} 条死信？",
    "Replay the dead letter of {key}?": "重放记录 {key} 的死信？",
    "Select the dead letters to replay first.": "请先选择要重放的死信。",
    "Stop this scheme? Its schedule is turned off, and a run in progress reads no more and ends once what "
    "it read is done.": "停止本方案？其计划将停用，正在进行的运行不再读取新记录，已读取的处理完后结束。",
    # a run that waits because no `unigate worker` runs
    "Waiting for a worker: none has been seen for {age}; start `unigate worker`.": (
        "正在等待工作进程：已有 {age} 未见任何工作进程；请启动 `unigate worker`。"
    ),
    "Waiting for a worker: none has been seen yet; start `unigate worker`.": (
        "正在等待工作进程：尚未见过任何工作进程；请启动 `unigate worker`。"
    ),
    "{n} s": "{n} 秒",
    "{n} min": "{n} 分钟",
    "{n} h": "{n} 小时",
    "{n} d": "{n} 天",
    # a dead letter's details (run page)
    "Details": "查看",
    "Details of the dead letter of {key}": "查看记录 {key} 的死信",
    "Dead letter": "死信",
    "Close": "关闭",
    "Loading…": "正在加载…",
    "Could not load the dead letter: {error}": "无法加载死信：{error}",
    "Shown as stored, personal data included, as the admin API returns it.": (
        "按存储原样显示，含个人信息，与管理 API 返回的一致。"
    ),
    "Error code": "错误代码",
    "Vendor code": "厂商代码",
    "Message": "消息",
    "Full error": "完整错误",
    "Source record": "源记录",
    "Mapped record": "映射后的记录",
    "None: the record failed before it was mapped.": "无：该记录在映射之前就已失败。",
    # creating, running in full and deleting a scheme (list and designer)
    "New scheme": "新建方案",
    "Create scheme": "创建方案",
    "The scheme starts with a mapping of its own that links the target's record key from the source's; "
    "link the other fields in the designer, which opens next.": (
        "新方案自带一个映射，已把目标的记录键关联到来源的记录键；其余字段请在随后打开的设计器中关联。"
    ),
    "A scheme needs a connection to read from and one to write to: add them under Connections first.": (
        "方案需要一个读取的连接和一个写入的连接：请先在“连接”中添加。"
    ),
    "Shown in the list and in the designer's address; no '/' in it.": (
        "显示在列表和设计器地址中；不能含 '/'。"
    ),
    "Optional: a cron expression (*/5 * * * *) or an interval (every 30s); without one the scheme runs "
    "when asked.": "可选：cron 表达式（*/5 * * * *）或间隔（every 30s）；不填则仅在手动运行时运行。",
    "Scheme {name} deleted.": "方案 {name} 已删除。",
    "Full run": "全量运行",
    "Read everything the source has again, ignoring the checkpoint": "忽略检查点，重新读取来源的全部数据",
    "Delete scheme": "删除方案",
    "Run {name} in full? It reads everything the source has again, ignoring the checkpoint, and pushes "
    "what changed.": "全量运行 {name}？将忽略检查点，重新读取来源的全部数据，并推送有变化的记录。",
    "Full run #{run} queued": "全量运行 #{run} 已排队",
    "Delete the scheme {name}? Its run history, dead letters and checkpoint are deleted with it; its "
    "mapping versions are kept.": "删除方案 {name}？其运行历史、死信和检查点将一并删除；映射的各版本保留。",
    # the service's refusals the new-scheme form shows (those with a name in them: portal/locale_zh.py)
    "a scheme needs a name of at most 100 characters": "方案需要名称，最多 100 个字符",
    "a scheme name has no spaces at either end, no '/' and no control characters": (
        "方案名称两端不能有空格，且不能含 '/' 或控制字符"
    ),
    "priority must be one of high, normal, low": "优先级须为 high、normal、low 之一",
    "an interval must be at least 1 second": "间隔至少为 1 秒",
    # page titles
    "Scheme {name}": "方案 {name}",
    "Run {run_id}": "运行 #{run_id}",
}

register(ZH)
