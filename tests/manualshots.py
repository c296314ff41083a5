"""The screenshots of the Chinese manuals (docs/zh_CN/): one list that the
browser test producing them (test_manual_screens.py) and the check of the
manuals' links (test_manual_docs.py) both read.  A manual may link only
to a name listed here; the browser test must produce every name."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs', 'zh_CN')
IMAGES = os.path.join(DOCS, 'images')
EXT = '.jpg'
QUALITY = 60

# name (file name without EXT) -> what it shows
SHOTS = {
    # signing in, every role
    'login': '网页客户端登录（sao）',
    # 收费员 clerk
    'clerk_menu': '收费员的菜单',
    'clerk_current_data': '当前数据：按表号查找',
    'clerk_meter_form': '表计 2001 的表单',
    'clerk_counter': '电量充值：输入本次缴费后自动算出购电量',
    'clerk_recharges': '计费 → 充值查询',
    'clerk_refunds': '计费 → 退费查询',
    'clerk_wallets': '计费 → 钱包',
    'clerk_wallet_form': '钱包表单：余额、表计与明细',
    # 财务 finance
    'finance_menu': '财务的菜单',
    'finance_wallet_lines': '计费 → 钱包明细',
    'finance_statement': '钱包 → 导出对账单',
    'finance_reconcile': '计费 → 对账',
    'finance_tariffs': '计费 → 费率',
    'finance_allocations': '计费 → 分摊',
    'finance_wechat_orders': '微信 → 微信支付订单',
    # 片区经理 area manager
    'manager_menu': '片区经理的菜单',
    'manager_current_data': '当前数据：只有本片区的表计',
    'manager_daily_usage': '日用量：每天一列',
    'manager_usage_report': '用量报表',
    'manager_status_count': '状态看板',
    'manager_usage_chart': '日用量图表',
    'manager_open_alarms': '报警 → 未处理报警',
    'manager_acknowledge': '确认报警（填写备注）',
    'manager_board': '状态报警界面（大屏）',
    'manager_export': '导出 Excel',
    'manager_export_jobs': '报表 → Excel 导出（后台任务）',
    # 维护人员 maintenance
    'maint_menu': '维护人员的菜单',
    'maint_channels': '采集管理 → 通道',
    'maint_channel_form': '通道表单：连接方式与健康状况',
    'maint_plans': '采集管理 → 抄表计划',
    'maint_commands': '采集管理 → 表计命令',
    'maint_meters': '档案管理 → 表计',
    'maint_meter_status': '表计表单的状态页',
    'maint_replace': '表计表单 → 执行操作 → 换表',
    'maint_mqtt_channel': '新建通道：类型“MQTT 服务器 (NB-IoT / 4G)”',
    'maint_import': '档案管理 → 导入表计档案',
    'maint_areas': '档案管理 → 区域树',
    'maint_profile': '报警 → 报警设置（报警阈值）',
    'maint_notifications': '报警 → 消息（短信发送记录）',
    # 管理员 administrator (in the maintenance manual)
    'admin_assign': '档案管理 → 权限分配',
    'admin_clear': '表计表单 → 执行操作 → 远程清零（必须填写原因）',
    'admin_alarm_config': '报警 → 报警配置（短信网关）',
    'admin_tokens': '集成接口 → 接口令牌',
    'admin_api_calls': '集成接口 → 接口调用记录',
    # 租户 tenant portal (a phone)
    'tenant_login': '住户登录',
    'tenant_meters': '我的表计',
    'tenant_usage': '用量（按日柱状图）',
    'tenant_history': '缴费记录',
    'tenant_alarms': '提醒',
    'tenant_recharge': '充值',
    'tenant_account': '我的',
}


def path(name):
    return os.path.join(IMAGES, name + EXT)
