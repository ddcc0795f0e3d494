with

accounts as (

    select * from {{ ref('stg_bank__accounts') }}

),

final as (

    select
        account_id,
        customer_id,
        account_type,
        opened_at,
        balance,
        status

    from accounts

)

select * from final
