"""Deterministic, realistic seed data shared by the vendor simulators.

The Wangdiantong simulator serves these stockouts and trades; the kuaidi100 simulator tracks their waybills.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypeVar

CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
DATETIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# What Wangdiantong (MySQL underneath) sends for a time that has not happened, e.g. an unshipped consign_time.
ZERO_DATETIME: Final = "0000-00-00 00:00:00"
DEFAULT_SEED: Final = 20260301
DEFAULT_STOCKOUT_COUNT: Final = 2400
SPAN: Final = timedelta(days=30)
_T = TypeVar("_T")

STOCKOUT_CANCELLED: Final = "5"
STOCKOUT_APPROVED: Final = "55"
STOCKOUT_SHIPPED: Final = "95"
STOCKOUT_FINISHED: Final = "110"
STOCKOUT_SHIPPED_WITH_EXCEPTION: Final = "113"
SHIPPED_STATUSES: Final = frozenset({STOCKOUT_SHIPPED, STOCKOUT_FINISHED, STOCKOUT_SHIPPED_WITH_EXCEPTION})

# Every field of the reference scheme's source record that Wangdiantong itself sends (kuaidi100Data is
# added by whoever enriches the record); `details_list` is the array of lines.


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


STOCKOUT_FIELDS: Final = _words(
    """
    bad_reason batch_no block_reason buyer_message calc_post_cost calc_weight checker_name checkouter_id
    cod_amount consign_status consign_time consigner_id created cs_remark currency custom_type customer_id
    customer_name customer_no delivery_term details_list discount ebill_status employee_no error_info
    examiner_id examiner_name examiner_no fenxiao_nick fenxiao_type flag_id flag_name freeze_reason fullname
    goods_count goods_total_amount goods_total_cost goods_type_count has_invoice id_card id_card_type
    invoice_content invoice_id invoice_print_status invoice_title invoice_type is_allocated lock_id
    logistics_code logistics_id logistics_name logistics_no logistics_print_status logistics_template_id
    logistics_type md5_str modified nick_name note_count operator_id operator_name order_no order_type
    order_type_name outer_no pack_score package_cost package_fee package_id packager_id packager_name
    packager_no paid pay_time pick_error_count pick_score picker_id picker_name picker_no picklist_no
    picklist_print_status picklist_seq platform_id pos_allocate_mode post_amount post_cost post_fee
    post_weight pre_charge_time print_batch_no print_remark printer_id printer_name printer_no
    raw_goods_count reason_id receivable receiver_address receiver_area receiver_city receiver_city_code
    receiver_country receiver_district receiver_district_code receiver_dtb receiver_mobile receiver_name
    receiver_province receiver_province_code receiver_ring receiver_telno receiver_zip refund_status remark
    reserve salesman_name salesman_no sendbill_print_status sendbill_template_id shop_name shop_no
    shop_remark sorter_id src_order_id src_order_no src_order_type src_tids src_trade_no status
    stock_check_time stockout_id stockout_no stockout_reason stockout_receiver_dtb subtype tax tax_rate
    to_deliver_time trade_id trade_no trade_status trade_time trade_type unknown_goods_amount warehouse_id
    warehouse_name warehouse_no warehouse_type watcher_id weight wms_status tid
    """
)


@dataclass(frozen=True, slots=True)
class Carrier:
    """One express company as Wangdiantong names it and as kuaidi100 names it."""

    name: str  # wdt logistics_name
    logistics_code: str  # wdt logistics_code (the ERP's own code for the company)
    logistics_id: str  # wdt logistics_id (ERP row id)
    logistics_type: str  # wdt logistics_type (物流类别) [inferred numbering]
    kuaidi100_com: str
    phone_required: bool  # kuaidi100 answers 408 unless the receiver's mobile (last 4 digits) is given
    waybill_prefix: str
    waybill_digits: int  # random digits after the prefix
    share: int  # relative share of shipments


CARRIERS: Final = (
    Carrier("中通快递", "ZTO", "1", "5", "zhongtong", True, "7589", 10, 26),
    Carrier("圆通速递", "YTO", "2", "6", "yuantong", False, "YT", 13, 20),
    Carrier("韵达快递", "YUNDA", "3", "8", "yunda", False, "43", 11, 16),
    Carrier("申通快递", "STO", "4", "4", "shentong", False, "77", 11, 12),
    Carrier("顺丰速运", "SF", "5", "3", "shunfeng", True, "SF14", 11, 10),
    Carrier("极兔速递", "JT", "6", "1311", "jtexpress", False, "JT", 13, 8),
    Carrier("京东快递", "JD", "7", "1005", "jd", False, "JDVA", 11, 5),
    Carrier("EMS", "EMS", "8", "2", "ems", False, "98", 11, 3),
)
CARRIER_BY_LOGISTICS_CODE: Final = {c.logistics_code: c for c in CARRIERS}
CARRIER_BY_KUAIDI100_COM: Final = {c.kuaidi100_com: c for c in CARRIERS}


@dataclass(frozen=True, slots=True)
class City:
    """A prefecture-level city with a few of its districts (GB/T 2260 codes)."""

    province: str  # as Wangdiantong's address base writes it: 浙江省, 上海 (municipalities without 市)
    province_short: str  # as kuaidi100's areaName writes it: 浙江, 上海
    province_code: str
    name: str
    code: str
    zip: str
    center: str  # "lng,lat", kuaidi100's areaCenter
    pinyin: str
    region: str  # which warehouse serves it: east, south, north, central
    districts: tuple[tuple[str, str], ...]  # (name, code)

    @property
    def short(self) -> str:
        return self.name.removesuffix("市")


def _city(row: str, districts: str) -> City:
    province, short, pcode, name, code, zip_, center, pinyin, region = row.split()
    pairs = tuple((d.split(":")[0], d.split(":")[1]) for d in districts.split())
    return City(province, short, pcode, name, code, zip_, center, pinyin, region, pairs)


CITIES: Final = (
    _city(
        "上海 上海 310000 上海市 310100 200000 121.47,31.23 shanghai east",
        "浦东新区:310115 闵行区:310112 徐汇区:310104 静安区:310106 嘉定区:310114",
    ),
    _city(
        "北京 北京 110000 北京市 110100 100000 116.40,39.90 beijing north",
        "朝阳区:110105 海淀区:110108 丰台区:110106 顺义区:110113 昌平区:110114",
    ),
    _city("天津 天津 120000 天津市 120100 300000 117.20,39.08 tianjin north", "和平区:120101 南开区:120104"),
    _city(
        "重庆 重庆 500000 重庆市 500100 400000 106.55,29.56 chongqing central",
        "渝中区:500103 江北区:500105 渝北区:500112",
    ),
    _city(
        "广东省 广东 440000 广州市 440100 510000 113.26,23.13 guangzhou south",
        "天河区:440106 越秀区:440104 白云区:440111 番禺区:440113",
    ),
    _city(
        "广东省 广东 440000 深圳市 440300 518000 114.06,22.54 shenzhen south",
        "南山区:440305 福田区:440304 宝安区:440306 龙岗区:440307",
    ),
    _city("广东省 广东 440000 佛山市 440600 528000 113.12,23.02 foshan south", "禅城区:440604 南海区:440605"),
    _city(
        "浙江省 浙江 330000 杭州市 330100 310000 120.15,30.27 hangzhou east",
        "西湖区:330106 上城区:330102 拱墅区:330105 余杭区:330110 滨江区:330108",
    ),
    _city("浙江省 浙江 330000 宁波市 330200 315000 121.55,29.87 ningbo east", "鄞州区:330212 海曙区:330203"),
    _city("浙江省 浙江 330000 温州市 330300 325000 120.70,28.00 wenzhou east", "鹿城区:330302 瓯海区:330304"),
    _city(
        "江苏省 江苏 320000 南京市 320100 210000 118.80,32.06 nanjing east",
        "玄武区:320102 鼓楼区:320106 江宁区:320115",
    ),
    _city(
        "江苏省 江苏 320000 苏州市 320500 215000 120.58,31.30 suzhou east",
        "姑苏区:320508 吴中区:320506 虎丘区:320505",
    ),
    _city("江苏省 江苏 320000 无锡市 320200 214000 120.31,31.49 wuxi east", "梁溪区:320213 滨湖区:320211"),
    _city(
        "四川省 四川 510000 成都市 510100 610000 104.07,30.57 chengdu central",
        "武侯区:510107 锦江区:510104 青羊区:510105 成华区:510108",
    ),
    _city(
        "湖北省 湖北 420000 武汉市 420100 430000 114.31,30.59 wuhan central",
        "江汉区:420103 武昌区:420106 洪山区:420111 东西湖区:420112",
    ),
    _city(
        "湖南省 湖南 430000 长沙市 430100 410000 112.94,28.23 changsha central",
        "岳麓区:430104 芙蓉区:430102 天心区:430103",
    ),
    _city(
        "陕西省 陕西 610000 西安市 610100 710000 108.94,34.34 xian north",
        "雁塔区:610113 碑林区:610103 未央区:610112",
    ),
    _city("山东省 山东 370000 济南市 370100 250000 117.00,36.65 jinan north", "历下区:370102 市中区:370103"),
    _city(
        "山东省 山东 370000 青岛市 370200 266000 120.38,36.07 qingdao north", "市南区:370202 崂山区:370212"
    ),
    _city("福建省 福建 350000 福州市 350100 350000 119.30,26.08 fuzhou east", "鼓楼区:350102 台江区:350103"),
    _city("福建省 福建 350000 厦门市 350200 361000 118.09,24.48 xiamen south", "思明区:350203 湖里区:350206"),
    _city(
        "河南省 河南 410000 郑州市 410100 450000 113.62,34.75 zhengzhou north", "金水区:410105 二七区:410103"
    ),
    _city("安徽省 安徽 340000 合肥市 340100 230000 117.23,31.82 hefei east", "蜀山区:340104 包河区:340111"),
    _city(
        "辽宁省 辽宁 210000 沈阳市 210100 110000 123.43,41.80 shenyang north", "和平区:210102 沈河区:210103"
    ),
    _city(
        "辽宁省 辽宁 210000 大连市 210200 116000 121.61,38.91 dalian north", "中山区:210202 甘井子区:210211"
    ),
    _city(
        "河北省 河北 130000 石家庄市 130100 050000 114.51,38.04 shijiazhuang north",
        "长安区:130102 桥西区:130104",
    ),
    _city(
        "云南省 云南 530000 昆明市 530100 650000 102.83,24.88 kunming south", "五华区:530102 盘龙区:530103"
    ),
    _city(
        "广西壮族自治区 广西 450000 南宁市 450100 530000 108.37,22.82 nanning south",
        "青秀区:450103 兴宁区:450102",
    ),
    _city(
        "江西省 江西 360000 南昌市 360100 330000 115.86,28.68 nanchang central", "东湖区:360102 西湖区:360103"
    ),
    _city(
        "黑龙江省 黑龙江 230000 哈尔滨市 230100 150000 126.53,45.80 haerbin north",
        "南岗区:230103 道里区:230102",
    ),
    _city(
        "吉林省 吉林 220000 长春市 220100 130000 125.32,43.82 changchun north", "朝阳区:220104 南关区:220102"
    ),
    _city(
        "山西省 山西 140000 太原市 140100 030000 112.55,37.87 taiyuan north", "小店区:140105 迎泽区:140106"
    ),
    _city(
        "贵州省 贵州 520000 贵阳市 520100 550000 106.63,26.65 guiyang south", "南明区:520102 云岩区:520103"
    ),
)
CITY_BY_CODE: Final = {c.code: c for c in CITIES}

# The 34 provincial-level names of Wangdiantong's address base (full form; the short form is also accepted).
PROVINCES: Final = _words(
    "北京 天津 上海 重庆 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 "
    "山东省 河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 台湾省 "
    "内蒙古自治区 广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区"
)


def is_known_province(name: str) -> bool:
    """Whether `name` is a provincial-level name (浙江省, 浙江, 上海, 上海市, 广西壮族自治区, 广西...)."""
    name = name.strip()
    return len(name) >= 2 and any(p.startswith(name) or name == p + "市" for p in PROVINCES)


@dataclass(frozen=True, slots=True)
class Shop:
    shop_id: str
    shop_no: str
    shop_name: str
    platform_id: (
        str  # wdt platform code [inferred: 1 Taobao/Tmall, 3 JD, 32 Pinduoduo, 69 Douyin, 127 own shop]
    )
    tid_style: str
    nick_prefix: str
    share: int


SHOPS: Final = (
    Shop("1", "tmall-001", "天猫旗舰店", "1", "taobao19", "t_", 30),
    Shop("2", "taobao-001", "淘宝企业店", "1", "taobao18", "tb", 12),
    Shop("3", "jd-001", "京东旗舰店", "3", "jd", "jd_", 20),
    Shop("4", "pdd-001", "拼多多官方旗舰店", "32", "pdd", "pdd_", 16),
    Shop("5", "douyin-001", "抖音官方旗舰店", "69", "douyin", "dy", 16),
    Shop("6", "wxapp-001", "微信小程序商城", "127", "own", "wx_", 6),
)
SHOP_BY_NO: Final = {s.shop_no: s for s in SHOPS}
SHOP_BY_ID: Final = {s.shop_id: s for s in SHOPS}


@dataclass(frozen=True, slots=True)
class Warehouse:
    warehouse_id: str
    warehouse_no: str
    name: str
    city: City
    district: str
    district_code: str
    region: str
    staff: tuple[str, ...]


def _warehouse(
    wid: str, no: str, name: str, city_code: str, district: str, region: str, staff: str
) -> Warehouse:
    city = CITY_BY_CODE[city_code]
    code = dict(city.districts)[district]
    return Warehouse(wid, no, name, city, district, code, region, tuple(staff.split()))


WAREHOUSES: Final = (
    _warehouse(
        "1", "SHJD01", "上海嘉定仓", "310100", "嘉定区", "east", "周建华 沈丽萍 陆志强 顾海燕 钱国庆 朱晓东"
    ),
    _warehouse(
        "2", "GZBY01", "广州白云仓", "440100", "白云区", "south", "陈志伟 梁丽华 黄家明 何淑贞 林俊杰 罗永强"
    ),
    _warehouse(
        "3", "BJSY01", "北京顺义仓", "110100", "顺义区", "north", "王建国 李秀兰 张立新 刘红梅 赵德胜 孙桂芝"
    ),
    _warehouse(
        "4",
        "WHDXH01",
        "武汉东西湖仓",
        "420100",
        "东西湖区",
        "central",
        "胡志刚 万美华 熊伟 程丽娟 夏天明 汪建平",
    ),
)
WAREHOUSE_BY_NO: Final = {w.warehouse_no: w for w in WAREHOUSES}
_WAREHOUSE_BY_REGION: Final = {w.region: w for w in WAREHOUSES}


@dataclass(frozen=True, slots=True)
class Spec:
    """One sellable SKU of the merchant's catalogue."""

    goods_id: str
    spec_id: str
    goods_no: str
    spec_no: str
    goods_name: str
    spec_name: str
    barcode: str
    price_fen: int
    cost_fen: int
    weight_g: int
    cid: str


_PRODUCTS: Final = (
    # goods_no, goods_name, price (yuan), weight (g), category id, spec names
    ("TX1001", "纯棉短袖T恤", "59", 220, "50000436", "白色 M|白色 L|白色 XL|黑色 L|黑色 XL|藏青色 XL"),
    ("WY1002", "加绒连帽卫衣", "129", 650, "50008901", "灰色 L|灰色 XL|黑色 XL|酒红色 L"),
    ("NZ1003", "直筒牛仔裤", "159", 600, "50010167", "浅蓝 30|浅蓝 32|深蓝 31|深蓝 33"),
    ("CS1004", "商务长袖衬衫", "139", 300, "50011123", "白色 39|白色 41|浅蓝 40|浅蓝 42"),
    ("YRF1005", "轻薄羽绒服", "399", 450, "50008900", "黑色 L|黑色 XL|米白 M|雾蓝 L"),
    ("WZ1006", "纯棉中筒袜5双装", "29.9", 180, "50006846", "混色 均码|黑色 均码"),
    ("PB1007", "透气跑步鞋", "269", 900, "50012043", "黑白 40|黑白 42|灰色 41|灰色 43"),
    ("XLX1008", "20寸万向轮行李箱", "299", 3200, "50012027", "太空灰 20寸|樱花粉 20寸|曜石黑 24寸"),
    ("BWB1009", "316不锈钢保温杯500ml", "89", 380, "50002684", "月光白|薄荷绿|星空黑"),
    ("ZT1010", "天然乳胶枕", "199", 1300, "50008163", "标准款 60x40|高低款 60x40"),
    ("SJT1011", "纯棉四件套", "259", 2100, "50008776", "1.5m床 米白|1.8m床 米白|1.8m床 灰蓝"),
    ("XLJ1012", "棉柔洗脸巾3包", "39.9", 600, "50012768", "80抽x3包"),
    ("XYY1013", "深层洁净洗衣液2kg", "49.9", 2150, "50016348", "薰衣草香|柠檬清香"),
    ("JG1014", "每日坚果750g", "119", 850, "50050359", "30袋装 经典款|30袋装 儿童款"),
    ("LJ1015", "明前西湖龙井250g", "168", 400, "50013116", "罐装 250g|礼盒装 250g"),
    ("NK1016", "婴儿纸尿裤", "119", 1600, "50012544", "L码 54片|XL码 46片|M码 64片"),
    ("EJ1017", "无线蓝牙耳机", "199", 150, "50008090", "白色|黑色"),
    ("CDQ1018", "20W快充充电器", "49", 90, "50008091", "白色 单头|白色 套装"),
    ("SJK1019", "磨砂手机壳", "29.9", 40, "50012341", "iPhone 15 黑色|iPhone 15 Pro 透明|Mate 60 黑色"),
    ("YS1020", "声波电动牙刷", "159", 320, "50012942", "珍珠白|樱花粉"),
    ("MM1021", "补水保湿面膜10片", "79", 300, "50010815", "玻尿酸款|烟酰胺款"),
    ("KF1022", "挂耳咖啡50包", "89", 700, "50013049", "中度烘焙|深度烘焙"),
    ("LSF1023", "柳州螺蛳粉3袋", "39.9", 1000, "50050725", "原味 3袋|加辣 3袋"),
    ("YJD1024", "加厚瑜伽垫", "69", 1200, "50019780", "紫色 10mm|灰色 10mm|蓝色 15mm"),
)


def _ean13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def _fen(yuan: str) -> int:
    whole, _, frac = yuan.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _catalogue() -> tuple[Spec, ...]:
    specs: list[Spec] = []
    for index, (goods_no, name, price, weight, cid, spec_names) in enumerate(_PRODUCTS, start=1):
        for n, spec_name in enumerate(spec_names.split("|"), start=1):
            spec_no = f"{goods_no}-{n:02d}"
            # a stable barcode per SKU; 69 is China's GS1 prefix
            barcode = _ean13("69" + f"{zlib.crc32(spec_no.encode()) % 10**10:010d}")
            price_fen = _fen(price)
            specs.append(
                Spec(
                    str(1000 + index),
                    str(10000 + index * 100 + n),
                    goods_no,
                    spec_no,
                    name,
                    spec_name,
                    barcode,
                    price_fen,
                    price_fen * 55 // 100,
                    weight,
                    cid,
                )
            )
    return tuple(specs)


CATALOGUE: Final = _catalogue()
SPEC_BY_NO: Final = {s.spec_no: s for s in CATALOGUE}

_SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任"
)
_GIVEN: Final = _words(
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 霞 平 刚 桂英 婷 雪 浩 宇 欣怡 "
    "子涵 梓轩 佳琪 琳 晨 思远 雨桐 建华 志强 晓燕 海波 丹 慧 鹏 文 斌 颖 倩 俊 凯 宁 琦"
)
_MOBILE_PREFIXES: Final = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "180 181 182 183 185 186 187 188 189"
)
_ROADS: Final = _words(
    "人民路 解放路 中山路 建设路 新华路 长江路 和平路 胜利路 文化路 朝阳路 青年路 花园路 学府路 滨江路"
)
_COMMUNITIES: Final = _words(
    "阳光花园 锦绣家园 翠苑小区 金色港湾 万科城市花园 绿地世纪城 保利香槟国际 幸福里 碧桂园 龙湖春江郦城"
)
_TOWERS: Final = _words("国际大厦 财富中心 科技大厦 商务中心")
_BUYER_MESSAGES: Final = (
    "请尽快发货",
    "不要放快递柜",
    "送货前请电话联系",
    "周末送货",
    "包装结实一点",
    "麻烦发顺丰",
)
_CS_REMARKS: Final = ("已核对地址", "老客户，优先发货", "赠品已备注", "客户要求周一后发")


def as_china_time(moment: datetime) -> datetime:
    """`moment` in +08:00, whole seconds (a naive time is read as China time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    return moment.astimezone(CHINA_TZ).replace(microsecond=0)


def resolve_anchor(anchor: datetime | None) -> datetime:
    """The seed's "now": the given time, or the current hour when none is given (stable across restarts)."""
    if anchor is not None:
        return as_china_time(anchor)
    return datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0)


def format_time(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime(DATETIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A `yyyy-MM-dd HH:mm:ss` China time; raises ValueError on anything else (the zero date included)."""
    return datetime.strptime(text, DATETIME_FORMAT).replace(tzinfo=CHINA_TZ)


def money(fen: int) -> str:
    """An amount as Wangdiantong sends it: a decimal string with 4 places."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}00"


def quantity(count: int) -> str:
    return f"{count}.0000"


def kilograms(grams: int) -> str:
    return f"{grams // 1000}.{grams % 1000:03d}0"


@dataclass(frozen=True, slots=True)
class SeedData:
    """A seeded ERP: the stockouts and, one per stockout, the trade behind it."""

    stockouts: list[dict[str, Any]]
    trades: list[dict[str, Any]]


@dataclass(slots=True)
class _Line:
    spec: Spec
    tid: str
    oid: str
    count: int
    item_discount: int  # the platform's discount on this line (trade_push `discount`)
    share_discount: int  # this line's share of order-level coupons (trade_push `share_discount`)
    share_post: int
    gift: bool

    @property
    def total(self) -> int:
        return self.spec.price_fen * self.count if not self.gift else 0

    @property
    def net(self) -> int:
        return self.total - self.item_discount - self.share_discount


@dataclass(slots=True)
class _Times:
    trade: datetime
    pay: datetime
    created: datetime
    consign: datetime | None
    modified: datetime
    trade_modified: datetime


def generate_stockouts(
    seed: int, anchor: datetime, count: int = DEFAULT_STOCKOUT_COUNT
) -> list[dict[str, Any]]:
    """`count` sales stockouts of the 30 days before `anchor`, every source field filled as wdt sends it."""
    return generate_seed(seed, anchor, count).stockouts


def generate_trades(seed: int, anchor: datetime, count: int = DEFAULT_STOCKOUT_COUNT) -> list[dict[str, Any]]:
    """The trades behind `generate_stockouts(seed, anchor, count)`, as trade_query returns them."""
    return generate_seed(seed, anchor, count).trades


def generate_seed(seed: int, anchor: datetime, count: int = DEFAULT_STOCKOUT_COUNT) -> SeedData:
    """Stockouts and their trades together (one generation, so both agree); the same inputs, the same data."""
    anchor = as_china_time(anchor)
    rng = random.Random(seed)
    # trade times first, in order, so ids and numbers grow with time as an ERP's do
    span_seconds = int(SPAN.total_seconds()) - 1800
    offsets = sorted(rng.randrange(span_seconds) for _ in range(count))
    start = anchor - SPAN
    taken: set[str] = set()
    stockouts: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    for index, offset in enumerate(offsets):
        stockout, trade = _record(rng, anchor, index, start + timedelta(seconds=offset), taken)
        stockouts.append(stockout)
        trades.append(trade)
    return SeedData(stockouts, trades)


def _weighted(rng: random.Random, items: Sequence[_T], weights: Sequence[int]) -> _T:
    return rng.choices(items, weights)[0]


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def _unique(rng: random.Random, taken: set[str], make: Callable[[random.Random], str]) -> str:
    while True:
        value = make(rng)
        if value not in taken:
            taken.add(value)
            return value


def _tid(rng: random.Random, shop: Shop, when: datetime) -> str:
    match shop.tid_style:
        case "taobao19":
            return str(rng.randrange(2 * 10**18, 4 * 10**18))
        case "taobao18":
            return str(rng.randrange(10**17, 10**18))
        case "jd":
            return str(rng.randrange(3 * 10**11, 4 * 10**11))
        case "pdd":
            return when.strftime("%y%m%d-") + _digits(rng, 15)
        case "douyin":
            return "69" + _digits(rng, 17)
        case _:
            return "WX" + when.strftime("%Y%m%d%H%M%S") + _digits(rng, 4)


def _waybill(rng: random.Random, carrier: Carrier) -> str:
    return carrier.waybill_prefix + _digits(rng, carrier.waybill_digits)


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + _digits(rng, 8)


def _address(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"{rng.choice(_ROADS)}{rng.randrange(1, 999)}号{rng.choice(_TOWERS)}{rng.randrange(2, 40)}楼"
    return (
        f"{rng.choice(_ROADS)}{rng.randrange(1, 999)}号{rng.choice(_COMMUNITIES)}"
        f"{rng.randrange(1, 30)}栋{rng.randrange(1, 6)}单元{rng.randrange(1, 33)}{rng.randrange(1, 5):02d}室"
    )


def _lines(rng: random.Random, tids: list[str]) -> list[_Line]:
    n = _weighted(rng, (1, 2, 3, 4, 5), (55, 25, 12, 5, 3))
    specs = rng.sample(CATALOGUE, n)
    lines: list[_Line] = []
    for i, spec in enumerate(specs):
        tid = tids[0] if i < (n + 1) // 2 or len(tids) == 1 else tids[1]
        gift = i == n - 1 and n > 1 and rng.random() < 0.08
        count = 1 if gift else _weighted(rng, (1, 2, 3), (80, 15, 5))
        line = _Line(spec, tid, f"{tid}{i + 1:02d}", count, 0, 0, 0, gift)
        if not gift and rng.random() < 0.2:
            # an item promotion of 5–15 %, in whole yuan as shops set them
            line.item_discount = line.total * rng.choice((5, 10, 15)) // 100 // 100 * 100
        lines.append(line)
    return lines


def _apply_coupon(rng: random.Random, lines: list[_Line]) -> None:
    base = sum(line.total - line.item_discount for line in lines)
    if base < 9900 or rng.random() >= 0.35:
        return
    coupon = min(rng.choice((500, 1000, 2000, 3000)), base // 2)
    paying = [line for line in lines if line.total - line.item_discount > 0]
    left = coupon
    for line in paying[:-1]:
        line.share_discount = coupon * (line.total - line.item_discount) // base
        left -= line.share_discount
    paying[-1].share_discount = left  # the last line takes the remainder, as wdt expects


def _share_post(lines: list[_Line], post: int) -> None:
    paying = [line for line in lines if line.total > 0]
    base = sum(line.total for line in paying)
    left = post
    for line in paying[:-1]:
        line.share_post = post * line.total // base
        left -= line.share_post
    paying[-1].share_post = left


def _status(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.02:
        return STOCKOUT_CANCELLED
    if roll < 0.04:
        return STOCKOUT_APPROVED
    if roll < 0.06:
        return STOCKOUT_SHIPPED_WITH_EXCEPTION
    return STOCKOUT_SHIPPED


def _times(rng: random.Random, anchor: datetime, trade_time: datetime, status: str) -> tuple[_Times, str]:
    """When each thing happened; a shipment too recent to have left the warehouse stays approved (55)."""
    pay = trade_time + timedelta(seconds=rng.randrange(5, 600))
    created = min(pay + timedelta(seconds=rng.randrange(300, 8 * 3600)), anchor - timedelta(minutes=5))
    consign: datetime | None = None
    if status in SHIPPED_STATUSES:
        consign = created + timedelta(seconds=rng.randrange(1800, 30 * 3600))
        # the courier has always scanned a shipment at least two hours old, so tracking exists for it
        if consign > anchor - timedelta(hours=2):
            status, consign = STOCKOUT_APPROVED, None
    if consign is None:
        spread = 600 if status == STOCKOUT_APPROVED else 2 * 3600
        modified = min(created + timedelta(seconds=rng.randrange(0, spread)), anchor)
    elif status == STOCKOUT_SHIPPED and consign + timedelta(days=8) <= anchor and rng.random() < 0.8:
        status = STOCKOUT_FINISHED
        modified = consign + timedelta(seconds=rng.randrange(5 * 86400, 8 * 86400))
    else:
        modified = consign + timedelta(seconds=rng.randrange(60, 90 * 60))
    trade_modified = max(modified - timedelta(seconds=rng.randrange(1, 120)), pay)
    if consign is not None:
        trade_modified = max(trade_modified, consign)
    return _Times(trade_time, pay, created, consign, modified, trade_modified), status


_TRADE_STATUS_OF_STOCKOUT: Final = {
    STOCKOUT_CANCELLED: "5",
    STOCKOUT_APPROVED: "55",
    STOCKOUT_SHIPPED: "95",
    STOCKOUT_FINISHED: "110",
    STOCKOUT_SHIPPED_WITH_EXCEPTION: "95",
}


@dataclass(slots=True)
class _Order:
    """Everything drawn for one record, before it is written out in wdt's shapes."""

    index: int
    shop: Shop
    city: City
    district: str
    district_code: str
    warehouse: Warehouse
    carrier: Carrier
    times: _Times
    status: str
    tids: list[str]
    lines: list[_Line]
    post: int
    post_cost: int
    logistics_no: str
    nick: str
    staff: list[str]
    staff_ids: list[str]

    @property
    def shipped(self) -> bool:
        return self.times.consign is not None

    @property
    def goods_total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.item_discount + line.share_discount for line in self.lines)

    @property
    def grams(self) -> int:
        return sum(line.spec.weight_g * line.count for line in self.lines) + 100  # the carton


def _draw(rng: random.Random, anchor: datetime, index: int, trade_time: datetime, taken: set[str]) -> _Order:
    shop = _weighted(rng, SHOPS, [s.share for s in SHOPS])
    city = rng.choice(CITIES)
    district, district_code = rng.choice(city.districts)
    warehouse = _WAREHOUSE_BY_REGION[city.region] if rng.random() < 0.8 else rng.choice(WAREHOUSES)
    carrier = _weighted(rng, CARRIERS, [c.share for c in CARRIERS])
    times, status = _times(rng, anchor, trade_time, _status(rng))
    tids = [_unique(rng, taken, lambda r: _tid(r, shop, trade_time))]
    if rng.random() < 0.03:
        tids.append(_unique(rng, taken, lambda r: _tid(r, shop, trade_time)))  # a merged order
    lines = _lines(rng, tids)
    _apply_coupon(rng, lines)
    post = rng.choice((800, 1000, 1200)) if rng.random() < 0.12 else 0
    _share_post(lines, post)
    logistics_no = _unique(rng, taken, lambda r: _waybill(r, carrier)) if times.consign else ""
    staff = [rng.choice(warehouse.staff) for _ in range(6)]
    staff_ids = [str(warehouse.staff.index(name) + 10 * int(warehouse.warehouse_id)) for name in staff]
    post_cost = 1200 if carrier.logistics_code == "SF" else rng.choice((450, 500, 550, 600, 800))
    nick = shop.nick_prefix + _digits(rng, rng.choice((8, 10)))
    return _Order(
        index,
        shop,
        city,
        district,
        district_code,
        warehouse,
        carrier,
        times,
        status,
        tids,
        lines,
        post,
        post_cost,
        logistics_no,
        nick,
        staff,
        staff_ids,
    )


def _record(
    rng: random.Random, anchor: datetime, index: int, trade_time: datetime, taken: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    order = _draw(rng, anchor, index, trade_time, taken)
    ids = _Ids(index, order.times)
    common = _common(rng, order, ids)
    stockout = _stockout(order, ids, common)
    return stockout, _trade(order, ids, common, stockout["stockout_no"])


class _Ids:
    """The ERP's numbers for one record; they grow with time."""

    def __init__(self, index: int, times: _Times) -> None:
        self.stockout_id = str(300001 + index)
        self.trade_id = str(500001 + index)
        self.customer_id = str(80001 + index)
        self.rec_base = 1000001 + index * 10  # up to 5 stockout lines, then up to 5 trade lines
        self.stockout_no = f"CK{times.created:%Y%m%d}{index + 1:05d}"
        self.trade_no = f"JY{times.trade:%Y%m%d}{index + 1:05d}"
        self.customer_no = f"KH{times.trade:%Y%m%d}{index + 1:05d}"
        self.picklist_no = f"JH{times.created:%Y%m%d}{index // 20 + 1:04d}"


def _common(rng: random.Random, order: _Order, ids: _Ids) -> dict[str, Any]:
    """The fields a stockout and its trade share, under the same names."""
    city, district = order.city, order.district
    receiver = _person(rng)
    receivable = order.goods_total - order.discount + order.post
    return {
        "shop_no": order.shop.shop_no,
        "shop_name": order.shop.shop_name,
        "platform_id": order.shop.platform_id,
        "warehouse_no": order.warehouse.warehouse_no,
        "src_tids": ",".join(order.tids),
        "trade_status": _TRADE_STATUS_OF_STOCKOUT[order.status],
        "delivery_term": "1",
        "refund_status": "0",
        "fenxiao_type": "0",
        "fenxiao_nick": "",
        "trade_time": format_time(order.times.trade),
        "pay_time": format_time(order.times.pay),
        "customer_name": receiver,
        "customer_no": ids.customer_no,
        "receiver_name": receiver,
        "receiver_province": city.province,
        "receiver_city": city.name,
        "receiver_district": district,
        "receiver_address": _address(rng),
        "receiver_mobile": _mobile(rng),
        "receiver_telno": "",
        "receiver_zip": city.zip,
        "receiver_area": f"{city.province} {city.name} {district}",
        "receiver_dtb": f"{city.short} {district}",
        "logistics_no": order.logistics_no,
        "logistics_name": order.carrier.name,
        "logistics_code": order.carrier.logistics_code,
        "logistics_type": order.carrier.logistics_type,
        "buyer_message": rng.choice(_BUYER_MESSAGES) if rng.random() < 0.12 else "",
        "cs_remark": rng.choice(_CS_REMARKS) if rng.random() < 0.06 else "",
        "print_remark": "",
        "goods_type_count": str(len(order.lines)),
        "goods_count": quantity(sum(line.count for line in order.lines)),
        "post_amount": money(order.post),
        "discount": money(order.discount),
        "receivable": money(receivable),
        "cod_amount": money(0),
        "paid": money(receivable),
        "weight": kilograms(order.grams),
        "invoice_type": "0",
        "invoice_title": "",
        "invoice_content": "",
    }


def _stockout(order: _Order, ids: _Ids, common: dict[str, Any]) -> dict[str, Any]:
    times, staff, staff_ids = order.times, order.staff, order.staff_ids
    shipped = order.shipped
    modified = format_time(times.modified)

    def who(i: int) -> str:
        return staff[i] if shipped else ""

    def who_id(i: int) -> str:
        return staff_ids[i] if shipped else "0"

    def who_no(i: int) -> str:
        return f"E{int(staff_ids[i]):04d}" if shipped else ""

    return {
        **common,
        "stockout_id": ids.stockout_id,
        "order_no": ids.stockout_no,
        "stockout_no": ids.stockout_no,
        "src_order_id": ids.trade_id,
        "src_order_no": ids.trade_no,
        "src_order_type": "1",
        "src_trade_no": ids.trade_no,
        "trade_id": ids.trade_id,
        "trade_no": ids.trade_no,
        "tid": order.tids[0],
        "status": order.status,
        "order_type": "1",
        "order_type_name": "销售订单",
        "subtype": "0",
        "trade_type": "1",
        "custom_type": "0",
        "consign_status": "12" if shipped else "0",
        "consign_time": format_time(times.consign) if times.consign else ZERO_DATETIME,
        "created": format_time(times.created),
        "modified": modified,
        "stock_check_time": format_time(times.created),
        "pre_charge_time": ZERO_DATETIME,
        "to_deliver_time": "",
        "nick_name": order.nick,
        "customer_id": ids.customer_id,
        "receiver_country": "0",
        "receiver_province_code": order.city.province_code,
        "receiver_city_code": order.city.code,
        "receiver_district_code": order.district_code,
        "receiver_ring": "",
        "stockout_receiver_dtb": common["receiver_dtb"] if shipped else "",
        "warehouse_id": order.warehouse.warehouse_id,
        "warehouse_name": order.warehouse.name,
        "warehouse_type": "1",
        "logistics_id": order.carrier.logistics_id,
        "logistics_template_id": order.carrier.logistics_id,
        "logistics_print_status": "1" if shipped else "0",
        "sendbill_template_id": "0",
        "sendbill_print_status": "0",
        "ebill_status": "1" if shipped else "0",
        "goods_total_amount": money(order.goods_total),
        "goods_total_cost": money(sum(line.spec.cost_fen * line.count for line in order.lines)),
        "raw_goods_count": common["goods_count"],
        "unknown_goods_amount": money(0),
        "post_fee": common["post_amount"],
        "post_cost": money(order.post_cost),
        "calc_post_cost": money(order.post_cost),
        "calc_weight": common["weight"],
        "post_weight": common["weight"] if shipped else kilograms(0),
        "package_cost": money(50),
        "package_fee": money(0),
        "package_id": "0",
        "tax": money(0),
        "tax_rate": money(0),
        "currency": "CNY",
        "has_invoice": "0",
        "invoice_id": "0",
        "invoice_print_status": "0",
        "id_card": "",
        "id_card_type": "0",
        "flag_id": "0",
        "flag_name": "",
        "freeze_reason": "0",
        "block_reason": "0",
        "bad_reason": "0",
        "stockout_reason": "0",
        "reason_id": "0",
        "error_info": "",
        "remark": "",
        "shop_remark": "",
        "reserve": "",
        "outer_no": "",
        "batch_no": "",
        "lock_id": "0",
        "is_allocated": "1" if order.status != STOCKOUT_CANCELLED else "0",
        "pos_allocate_mode": "0",
        "wms_status": "0",
        "note_count": "0",
        "md5_str": hashlib.md5(f"{ids.stockout_no}|{modified}".encode()).hexdigest(),
        "salesman_name": "",
        "salesman_no": "",
        "employee_no": "",
        "operator_id": staff_ids[5],
        "operator_name": staff[5],
        "fullname": staff[5],
        "examiner_id": staff_ids[4],
        "examiner_name": staff[4],
        "examiner_no": f"E{int(staff_ids[4]):04d}",
        "checker_name": who(3),
        "checkouter_id": who_id(3),
        "consigner_id": who_id(3),
        "picker_id": who_id(0),
        "picker_name": who(0),
        "picker_no": who_no(0),
        "packager_id": who_id(1),
        "packager_name": who(1),
        "packager_no": who_no(1),
        "printer_id": who_id(2),
        "printer_name": who(2),
        "printer_no": who_no(2),
        "sorter_id": "0",
        "watcher_id": "0",
        "pick_score": "0",
        "pack_score": "0",
        "pick_error_count": "0",
        "picklist_no": ids.picklist_no if shipped else "",
        "picklist_seq": str(int(ids.stockout_id) % 20 + 1) if shipped else "0",
        "picklist_print_status": "1" if shipped else "0",
        "print_batch_no": f"PC{ids.picklist_no[2:]}" if shipped else "",
        "details_list": [_stockout_line(order, ids, n, line) for n, line in enumerate(order.lines)],
    }


def _stockout_line(order: _Order, ids: _Ids, n: int, line: _Line) -> dict[str, str]:
    spec = line.spec
    return {
        "rec_id": str(ids.rec_base + n),
        "stockout_id": ids.stockout_id,
        "src_oid": line.oid,
        "src_tid": line.tid,
        "platform_id": order.shop.platform_id,
        "goods_id": spec.goods_id,
        "spec_id": spec.spec_id,
        "goods_no": spec.goods_no,
        "spec_no": spec.spec_no,
        "spec_code": "",
        "goods_name": spec.goods_name,
        "spec_name": spec.spec_name,
        "barcode": spec.barcode,
        "goods_count": quantity(line.count),
        "sell_price": money(0 if line.gift else spec.price_fen),
        "market_price": money(spec.price_fen * 13 // 10),
        "cost_price": money(spec.cost_fen),
        "total_amount": money(line.total),
        "discount": money(line.item_discount + line.share_discount),
        "share_amount": money(line.net),
        "share_post": money(line.share_post),
        "paid": money(line.net + line.share_post),
        "gift_type": "1" if line.gift else "0",
        "refund_status": "0",
        "goods_type": "1",
        "unit_name": "件",
        "weight": kilograms(spec.weight_g * line.count),
        "remark": "赠品" if line.gift else "",
        "created": format_time(order.times.created),
    }


def _trade(order: _Order, ids: _Ids, common: dict[str, Any], stockout_no: str) -> dict[str, Any]:
    modified = format_time(order.times.trade_modified)
    created = format_time(order.times.pay)
    return {
        **common,
        "trade_id": ids.trade_id,
        "trade_no": ids.trade_no,
        "trade_type": "1",
        "warehouse_type": "1",
        "freeze_reason": "0",
        "buyer_nick": order.nick,
        "remark_flag": "0",
        "goods_amount": money(order.goods_total),
        "other_amount": money(0),
        "ext_cod_fee": money(0),
        "stockout_no": stockout_no,
        "created": created,
        "modified": modified,
        "goods_list": [
            {
                "rec_id": str(ids.rec_base + n + 5),
                "trade_id": ids.trade_id,
                "src_oid": line.oid,
                "src_tid": line.tid,
                "platform_id": order.shop.platform_id,
                "goods_id": line.spec.goods_id,
                "spec_id": line.spec.spec_id,
                "goods_no": line.spec.goods_no,
                "spec_no": line.spec.spec_no,
                "goods_name": line.spec.goods_name,
                "spec_name": line.spec.spec_name,
                "num": quantity(line.count),
                "price": money(0 if line.gift else line.spec.price_fen),
                "adjust_amount": money(0),
                "discount": money(line.item_discount),
                "share_discount": money(line.share_discount),
                "share_amount": money(line.net),
                "share_post": money(line.share_post),
                "paid": money(line.net + line.share_post),
                "refund_status": "0",
                "gift_type": "1" if line.gift else "0",
                "remark": "",
                "cid": line.spec.cid,
                "weight": kilograms(line.spec.weight_g * line.count),
                "created": created,
                "modified": modified,
            }
            for n, line in enumerate(order.lines)
        ],
    }
